"""What every client class shares: its constructor and the async operations."""

from typing import Any, Callable, Dict, Iterable, Optional, Union

from ._engine import Callback, Engine, EventStream
from ._settings import Settings, SslOption, make_settings
from ._wire import Message, ack_result, disconnect_params, encode_line, message_params, new_request_id, require_str, room_page, with_exclude
from .errors import ProtocolError
from .types import AckResult, RoomInfo

Exclude = Union[str, Iterable[str], None]


class Backend:
    """Upstream's six positional settings, then this package's, keyword-only:

    token: sent in an `auth` line first on every link (the broker's --backend-token).
    ssl / cafile / server_hostname: TLS to the broker's backend port (--backend-tls-cert):
      ssl=True verifies against the system CAs, cafile=PATH against that PEM, or pass an
      ssl.SSLContext; server_hostname is the name to check (default: host).
    max_reconnect_attempts: attempts in a row that may fail before the client gives up
      (ConnectFailedError); None retries forever. The first connect counts too.
    heartbeat_timeout: seconds without a byte from the broker after which the link is
      dropped and re-made (the broker sends a heartbeat every 15 s by default); None: never.
    connect_timeout, request_timeout (acked sends and room_info), send_buffer_size (bytes
      held while the link is down), max_line (longest line read), max_pending_events
      (unhandled events before the client stops reading), handler_threads (threads for
      plain-function handlers; None: ThreadPoolExecutor's default).
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 8081,
        auto_reconnect: bool = True,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 30.0,
        reconnect_backoff: float = 2.0,
        *,
        max_reconnect_attempts: Optional[int] = None,
        token: Optional[str] = None,
        ssl: SslOption = None,
        cafile: Optional[str] = None,
        server_hostname: Optional[str] = None,
        heartbeat_timeout: Optional[float] = 45.0,
        connect_timeout: float = 10.0,
        request_timeout: float = 10.0,
        send_buffer_size: int = 8 * 1024 * 1024,
        max_line: int = 16 * 1024 * 1024,
        max_pending_events: int = 10000,
        handler_threads: Optional[int] = None,
    ) -> None:
        settings = dict(locals())  # the arguments above, by name: make_settings checks each one
        del settings["self"]
        self._engine = Engine(make_settings(**settings), self._handler)

    @property
    def settings(self) -> Settings:
        return self._engine.settings

    @property
    def connected(self) -> bool:
        return self._engine.connected

    def _handler(self, name: str) -> Callback:
        handler: Callable[..., Any] = getattr(self, name)
        return handler


class AsyncOperations:
    """The async API over an engine: lifecycle, sends, and the extensions.

    Sends write at once while the link is up (waiting while the broker reads
    slowly); while it is down and a reconnect is coming they wait in a buffer of
    send_buffer_size bytes, written first on the next link, and raise
    SendBufferFullError when it is full. With no link coming (never connected,
    disconnected, auto_reconnect off) they raise NotConnectedError.

    `message` is a str (a text frame) or bytes (a binary frame). With ack=True a
    send needs a live link and returns the broker's AckResult, raising
    RequestTimeoutError after `timeout` (default request_timeout) or
    ConnectionLostError if the link drops first; without it, it returns None.
    """

    _engine: Engine

    async def connect(self) -> bool:
        """One attempt; False on failure. Once up, the link is kept (and re-made) in the background."""
        return await self._engine.connect()

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Stops reading, waits up to `timeout` s for running handlers, flushes and closes."""
        await self._engine.disconnect(timeout)

    async def run_forever(self) -> None:
        """Connects if needed (retrying per the settings) and returns after disconnect().
        Raises ConnectFailedError, AuthenticationError or ConnectionLostError if it stops on its own."""
        await self._engine.run_forever()

    async def __aenter__(self) -> Any:
        await self._engine.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.disconnect()

    def events(self) -> EventStream:
        """The events (ConnectEvent, MessageEvent, DisconnectEvent, ErrorEvent) for `async for`,
        each after its handler ran. Connection requests are answered by on_connection_request."""
        return self._engine.events()

    async def _send(self, action: str, params: Dict[str, Any], ack: bool, timeout: Optional[float]) -> Optional[AckResult]:
        if ack:
            return ack_result(await self._engine.request(action, params, timeout, ack=True))
        await self._engine.send(encode_line(action, new_request_id(), params))
        return None

    async def broadcast_message(self, message: Message, *, exclude: Exclude = None, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        """To every client, but those in `exclude` (a client_id or up to 1000 of them)."""
        return await self._send("broadcast", with_exclude(message_params(message), exclude), ack, timeout)

    async def send_room_message(self, room_id: str, message: Message, *, exclude: Exclude = None, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        """To every client in the room, but those in `exclude`."""
        params = {"room_id": require_str("room_id", room_id), **message_params(message)}
        return await self._send("message_to_room", with_exclude(params, exclude), ack, timeout)

    async def send_private_message(self, client_id: str, message: Message, *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        """To every socket of that client_id."""
        params = {"conn_id": require_str("client_id", client_id), **message_params(message)}
        return await self._send("message_to_connection", params, ack, timeout)

    async def join_room(self, client_id: str, room_id: str, *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        """Every socket of client_id joins room_id (within the broker's --max-rooms-per-connection)."""
        params = {"conn_id": require_str("client_id", client_id), "room_id": require_str("room_id", room_id)}
        return await self._send("join_room", params, ack, timeout)

    async def leave_room(self, client_id: str, room_id: str, *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        """Every socket of client_id leaves room_id (their context.room_id stays what they connected with)."""
        params = {"conn_id": require_str("client_id", client_id), "room_id": require_str("room_id", room_id)}
        return await self._send("leave_room", params, ack, timeout)

    async def disconnect_client(self, client_id: str, code: int = 1000, reason: str = "", *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        """Closes every socket of client_id with `code` (1000 or 4000..4999) and `reason` (at most 123 UTF-8 bytes)."""
        return await self._send("disconnect", disconnect_params(client_id, code, reason), ack, timeout)

    async def room_info(self, room_id: str, *, timeout: Optional[float] = None) -> RoomInfo:
        """Who is in the room, every page fetched; `timeout` applies to each page."""
        params: Dict[str, Any] = {"room_id": require_str("room_id", room_id)}
        client_ids = []
        while True:
            count, page, following, nodes, nodes_total = room_page(await self._engine.request("room_info", params, timeout))
            client_ids.extend(page)
            if following is None:
                return RoomInfo(room_id, count, client_ids, nodes, nodes_total)
            if not page or following == params.get("cursor"):
                raise ProtocolError(f"room_info paging does not advance (next {following!r})")
            params["cursor"] = following
