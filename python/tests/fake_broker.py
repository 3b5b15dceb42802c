"""A stand-in broker inside the test: it accepts backend links, records the
exact bytes of every line they write, and sends whatever the test wants."""

import asyncio
import json
import ssl
from typing import Any, Dict, List, Optional, Union


def line_of(action: str, request_id: str, params: Dict[str, Any], ack: bool = False) -> bytes:
    """A backend line as the spec fixes it: json.dumps defaults (ASCII), keys action, request_id, params, then ack."""
    envelope: Dict[str, Any] = {"action": action, "request_id": request_id, "params": params}
    if ack:
        envelope["ack"] = True
    return (json.dumps(envelope) + "\n").encode("ascii")


class FakeLink:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def line(self, timeout: float = 5.0) -> bytes:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise AssertionError("the backend closed the link; a line was expected")
        return raw

    async def expect(self, action: str, params: Dict[str, Any], ack: bool = False) -> str:
        """Reads one line, checks it byte for byte against the spec, returns its request_id."""
        raw = await self.line()
        request_id = json.loads(raw)["request_id"]
        assert isinstance(request_id, str) and request_id
        assert raw == line_of(action, request_id, params, ack), raw
        return request_id

    async def send(self, message: Union[Dict[str, Any], bytes]) -> None:
        self.writer.write(message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n")
        await self.writer.drain()

    async def event(self, action: str, params: Dict[str, Any], request_id: str = "e1") -> None:
        await self.send({"request_id": request_id, "action": action, "params": params})

    async def eof(self, timeout: float = 5.0) -> bytes:
        """Everything the backend wrote until it closed the link."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    def close(self) -> None:
        self.writer.close()


class FakeBroker:
    def __init__(self) -> None:
        self.links: "asyncio.Queue[FakeLink]" = asyncio.Queue()
        self.accepted: List[FakeLink] = []
        self.port = 0
        self._server: Optional[asyncio.AbstractServer] = None

    async def start(self, port: int = 0, tls: Optional[ssl.SSLContext] = None) -> "FakeBroker":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = FakeLink(reader, writer)
        self.accepted.append(link)
        self.links.put_nowait(link)

    async def link(self, timeout: float = 5.0) -> FakeLink:
        return await asyncio.wait_for(self.links.get(), timeout)

    def stop_listening(self) -> None:
        """Refuses new links; open ones stay (Server.wait_closed would wait for them since Python 3.12)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def stop(self) -> None:
        self.stop_listening()
        for link in self.accepted:
            link.close()
