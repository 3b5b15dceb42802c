"""AsyncPyStrandsClient: subclass it and override the on_* coroutines."""

from typing import Optional, Union

from . import _defaults
from ._backend import AsyncOperations, Backend
from .types import ConnectionRequestContext, Context


class AsyncPyStrandsClient(AsyncOperations, Backend):
    """An asyncio backend. Handlers of different clients run concurrently; each
    client's events reach its handlers in order. A handler may also be a plain
    method: it then runs in a thread."""

    async def on_connection_request(self, request: ConnectionRequestContext) -> Optional[bool]:
        """Return True/False, or set request.accepted (preset True) and return anything else.
        request.context (preset: a fresh uuid4 client_id, room_id = url, metadata {}) may be changed."""
        return _defaults.on_connection_request(request)

    async def on_new_connection(self, context: Context) -> None:
        _defaults.on_new_connection(context)

    async def on_message(self, message: Union[str, bytes], context: Context) -> None:
        """`message` is a str, or bytes when the client sent a binary frame."""
        _defaults.on_message(message, context)

    async def on_disconnect(self, context: Context) -> None:
        _defaults.on_disconnect(context)

    async def on_error(self, error: str, context: Context) -> None:
        _defaults.on_error(error, context)
