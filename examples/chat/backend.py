"""The chat example's backend: a strands backend (the Python SDK) that runs the
chat, and a small HTTP server for its page.

Clients connect with ?name=<name>&room=<room>. A message goes to everyone else
in the sender's room and back to the sender's own tabs as "you"; `/join <room>`
moves the sender, `/kick <name>` closes a member of the sender's room with
close code 4001. Every change of a room's members sends the room its member
list. The state is in this process's memory: run one per broker.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union
from urllib.parse import urlsplit

from strands_backend import ConnectionRequestContext, Context, PyStrands

log = logging.getLogger("chat")

HERE = Path(__file__).resolve().parent
# Built by `npm ci` (or `npm run build`) in the repository.
CLIENT_BUNDLE = HERE.parent.parent / "dist" / "browser" / "strands-client.js"

# Names and rooms: short, and plain enough to show anywhere and to fit a close reason.
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
DEFAULT_ROOM = "lobby"
MAX_TEXT = 1000
KICKED = 4001
HELP = "commands: /join <room>, /kick <name>"


def event(kind: str, **fields: object) -> str:
    """What the page gets: one JSON object per frame, `type` says which."""
    return json.dumps({"type": kind, **fields})


class Chat:
    """Which room each name is in, and what each message does. The handlers are
    `async def`: they run on the SDK's event loop, so no thread touches the state."""

    def __init__(self, app: PyStrands) -> None:
        self.app = app
        self.room_of: Dict[str, str] = {}
        # Membership changes and the member lists they send, one at a time: a list sent
        # after another always describes the later state.
        self.membership = asyncio.Lock()
        app.on_connection_request(self.admit)
        app.on_new_connection(self.connected)
        app.on_message(self.message)
        app.on_disconnect(self.disconnected)

    async def admit(self, request: ConnectionRequestContext) -> bool:
        name = request.query_param("name") or ""
        room = request.query_param("room") or DEFAULT_ROOM
        if not NAME.fullmatch(name) or not NAME.fullmatch(room):
            return False
        request.context.client_id = name
        # A name is one person: a second tab of someone who moved joins them where they are
        # (read under the lock: not halfway through a move or a departure).
        async with self.membership:
            request.context.room_id = self.room_of.get(name, room)
        return True

    async def connected(self, context: Context) -> None:
        name = context.client_id
        async with self.membership:
            room = self.room_of.setdefault(name, context.room_id)
            await self.app.send_private_message(name, event("joined", room=room))
            await self.send_members(room)

    async def disconnected(self, context: Context) -> None:
        name = context.client_id
        async with self.membership:
            room = self.room_of.get(name, context.room_id)
            # The broker knows whether another tab of this name is still there.
            if name not in await self.send_members(room):
                self.room_of.pop(name, None)

    async def message(self, message: Union[str, bytes], context: Context) -> None:
        name = context.client_id
        if isinstance(message, bytes):
            await self.tell(name, "text only: binary frames are not chat messages")
        elif len(message) > MAX_TEXT:
            await self.tell(name, f"not sent: over {MAX_TEXT} characters")
        elif message.startswith("/"):
            await self.command(name, context, message[1:].split())
        elif message.strip():
            room = self.room_of.get(name, context.room_id)
            await self.app.send_room_message(room, event("message", **{"from": name, "text": message}), exclude=name)
            # After the room's copy, on the same link: the sender's tabs show it once, as theirs.
            await self.app.send_private_message(name, event("mine", text=message))

    async def command(self, name: str, context: Context, words: List[str]) -> None:
        verb, args = (words[0], words[1:]) if words else ("", [])
        if verb == "join" and len(args) == 1 and NAME.fullmatch(args[0]):
            await self.move(name, context, args[0])
        elif verb == "kick" and len(args) == 1:
            await self.kick(name, context, args[0])
        else:
            await self.tell(name, f"not understood; {HELP} (names and rooms: 1-32 of A-Z a-z 0-9 _ -)")

    async def move(self, name: str, context: Context, room: str) -> None:
        async with self.membership:
            old = self.room_of.get(name, context.room_id)
            if room == old:
                await self.tell(name, f"already in {room}")
                return
            await self.app.join_room(name, room)
            await self.app.leave_room(name, old)
            self.room_of[name] = room
            await self.app.send_private_message(name, event("joined", room=room))
            await self.send_members(old)
            await self.send_members(room)

    async def kick(self, name: str, context: Context, target: str) -> None:
        room = self.room_of.get(name, context.room_id)
        if target == name:
            await self.tell(name, "you cannot kick yourself")
        # The broker's word, not this process's: it may have restarted since target came.
        elif target not in (await self.app.room_info(room)).client_ids:
            await self.tell(name, f"no {target} in {room}")
        else:
            await self.app.send_room_message(room, event("notice", text=f"{name} kicked {target}"))
            # 4000-4999: the page's client stops instead of coming back. Its disconnected
            # events then update the member list.
            await self.app.disconnect_client(target, KICKED, f"kicked by {name}")

    async def tell(self, name: str, text: str) -> None:
        await self.app.send_private_message(name, event("notice", text=text))

    async def send_members(self, room: str) -> List[str]:
        """Sends the room who is in it; returns them."""
        members = (await self.app.room_info(room)).client_ids
        if members:
            await self.app.send_room_message(room, event("members", room=room, members=members))
        return members


class PageServer(ThreadingHTTPServer):
    """Serves the page's files, and nothing else: a fixed map from path to bytes."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], files: Dict[str, Tuple[bytes, str]]) -> None:
        super().__init__(address, PageRequest)
        self.files = files


class PageRequest(BaseHTTPRequestHandler):
    server: PageServer
    # Seconds a connection may sit idle: each holds a thread.
    timeout = 10

    def do_GET(self) -> None:
        self.answer(send_body=True)

    def do_HEAD(self) -> None:
        self.answer(send_body=False)

    def answer(self, send_body: bool) -> None:
        found = self.server.files.get(urlsplit(self.path).path)
        if found is None:
            self.send_error(404)
            return
        body, content_type = found
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src data:")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("page server: " + format, *args)


def page_files(ws_url: Optional[str]) -> Dict[str, Tuple[bytes, str]]:
    if not CLIENT_BUNDLE.is_file():
        raise SystemExit(f"{CLIENT_BUNDLE} is missing: run `npm ci` in the repository first (it builds the browser client)")
    html = (HERE / "index.html").read_bytes()
    return {
        "/": (html, "text/html; charset=utf-8"),
        "/index.html": (html, "text/html; charset=utf-8"),
        "/chat.js": ((HERE / "chat.js").read_bytes(), "text/javascript; charset=utf-8"),
        "/chat.css": ((HERE / "chat.css").read_bytes(), "text/css; charset=utf-8"),
        "/strands-client.js": (CLIENT_BUNDLE.read_bytes(), "text/javascript; charset=utf-8"),
        # null: the page uses port 8080 of the host it was loaded from.
        "/config.json": (json.dumps({"brokerUrl": ws_url}).encode(), "application/json"),
    }


def port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return value


def listen_port(text: str) -> int:
    """A port to listen on: 0 lets the system pick one."""
    return 0 if int(text) == 0 else port(text)


def ws_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"not a ws:// or wss:// URL: {text}")
    return text


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The strands chat example: its backend and the server of its page.")
    parser.add_argument("--broker-host", default=os.environ.get("STRANDS_TCP_HOST", "127.0.0.1"), help="the broker's backend address (env STRANDS_TCP_HOST; default 127.0.0.1)")
    parser.add_argument("--broker-port", type=port, default=os.environ.get("STRANDS_TCP_PORT", "8081"), help="the broker's backend port (env STRANDS_TCP_PORT; default 8081)")
    parser.add_argument("--http-host", default="127.0.0.1", help="where the page is served (default 127.0.0.1)")
    parser.add_argument("--http-port", type=listen_port, default=8000, help="the page's port (default 8000; 0 picks a free one)")
    parser.add_argument("--ws-url", type=ws_url, help="the broker's WebSocket URL the page connects to (default: port 8080 of the page's host)")
    return parser.parse_args()


async def serve(args: argparse.Namespace) -> None:
    files = page_files(args.ws_url)
    try:
        pages = PageServer((args.http_host, args.http_port), files)
    except OSError as err:
        raise SystemExit(f"cannot serve the page on {args.http_host}:{args.http_port}: {err.strerror or err}")
    threading.Thread(target=pages.serve_forever, name="page-server", daemon=True).start()
    host, bound = pages.server_address[:2]
    print(f"chat page: http://{host}:{bound}/", flush=True)
    # The broker's --backend-token, if it has one: from the environment, not argv, which `ps` shows.
    app = PyStrands(args.broker_host, args.broker_port, token=os.environ.get("STRANDS_BACKEND_TOKEN"))
    Chat(app)
    try:
        await app.run_forever()
    finally:
        pages.shutdown()
        pages.server_close()


def main() -> None:
    args = arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
