"""PyStrands: a decorator app over the async client."""

import asyncio
from typing import Any, Callable, Dict, Optional, TypeVar

from . import _defaults
from ._backend import AsyncOperations, Backend, Exclude
from ._engine import Callback
from ._wire import Message
from .types import AckResult

H = TypeVar("H", bound=Callable[..., Any])

_DEFAULTS: Dict[str, Callback] = {
    "on_connection_request": _defaults.on_connection_request,
    "on_new_connection": _defaults.on_new_connection,
    "on_message": _defaults.on_message,
    "on_disconnect": _defaults.on_disconnect,
    "on_error": _defaults.on_error,
}


class PyStrands(AsyncOperations, Backend):
    """Register handlers with the decorators; each may be `async def` or a plain
    function (run in a thread). A connection-request handler that returns None
    leaves request.accepted as it is (preset True): it accepts unless it set it False."""

    _handlers: Optional[Dict[str, Callback]] = None

    def _register(self, name: str, handler: H) -> H:
        if not callable(handler):
            raise TypeError(f"@{name} decorates a function, not {handler!r}")
        if self._handlers is None:
            self._handlers = {}
        self._handlers[name] = handler
        return handler

    def _handler(self, name: str) -> Callback:
        return (self._handlers or {}).get(name) or _DEFAULTS[name]

    def on_connection_request(self, handler: H) -> H:
        return self._register("on_connection_request", handler)

    def on_new_connection(self, handler: H) -> H:
        return self._register("on_new_connection", handler)

    def on_message(self, handler: H) -> H:
        return self._register("on_message", handler)

    def on_disconnect(self, handler: H) -> H:
        return self._register("on_disconnect", handler)

    def on_error(self, handler: H) -> H:
        return self._register("on_error", handler)

    async def broadcast(self, message: Message, *, exclude: Exclude = None, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        return await self.broadcast_message(message, exclude=exclude, ack=ack, timeout=timeout)

    def run(self) -> None:
        """Blocks until disconnect(); Ctrl-C stops it (KeyboardInterrupt propagates)."""
        asyncio.run(self.run_async())

    async def run_async(self) -> None:
        await self.run_forever()
