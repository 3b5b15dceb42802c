"""A minimal asyncio WebSocket client (RFC 6455) for the tests: handshake,
masked text/binary/close frames out, unfragmented or fragmented frames in."""

import asyncio
import base64
import hashlib
import os
import struct
from typing import Dict, Optional, Tuple, Union

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class UpgradeRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"upgrade answered with HTTP {status}")
        self.status = status


class Closed(Exception):
    def __init__(self, code: Optional[int], reason: str) -> None:
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, port: int, path: str = "/", headers: Optional[Dict[str, str]] = None, timeout: float = 10.0) -> "WebSocket":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            writer.close()
            raise UpgradeRefused(status)
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if b"sec-websocket-accept: " + accept.lower() not in head.lower():
            raise AssertionError(f"bad Sec-WebSocket-Accept in {head!r}")
        return cls(reader, writer)

    def _frame(self, opcode: int, payload: bytes) -> None:
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self._writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def send(self, message: Union[str, bytes]) -> None:
        if isinstance(message, str):
            self._frame(1, message.encode("utf-8"))
        else:
            self._frame(2, message)
        await self._writer.drain()

    async def _read_frame(self) -> Tuple[bool, int, bytes]:
        b0, b1 = await self._reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack(">H", await self._reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack(">Q", await self._reader.readexactly(8))
        return bool(b0 & 0x80), b0 & 0x0F, await self._reader.readexactly(n)

    async def recv(self, timeout: float = 10.0) -> Union[str, bytes]:
        """The next message: str for text, bytes for binary; Closed when the server closes."""
        return await asyncio.wait_for(self._recv(), timeout)

    async def _recv(self) -> Union[str, bytes]:
        parts = b""
        kind = 0
        while True:
            try:
                fin, opcode, payload = await self._read_frame()
            except asyncio.IncompleteReadError:
                raise Closed(None, "connection dropped without a close frame") from None
            if opcode == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                self._writer.close()
                raise Closed(code, payload[2:].decode("utf-8"))
            if opcode == 9:
                self._frame(10, payload)
                continue
            if opcode == 10:
                continue
            kind = kind or opcode
            parts += payload
            if fin:
                return parts.decode("utf-8") if kind == 1 else parts

    async def close(self, code: int = 1000) -> None:
        if self._writer.is_closing():
            return
        self._frame(8, struct.pack(">H", code))
        try:
            while True:
                await self.recv(2.0)
        except (Closed, asyncio.TimeoutError, ConnectionError):
            pass
        self._writer.close()
