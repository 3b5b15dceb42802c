"""PyStrandsClient: the same client for code without asyncio.

Its link runs on an event loop in a thread of its own; each blocking call is
carried out there, so calls from any number of threads are safe and their
lines are never interleaved. Handlers (plain methods) run in a thread pool:
concurrently for different clients, in order for each one.
"""

import asyncio
import threading
import weakref
from functools import cached_property
from typing import Any, Coroutine, Optional, TypeVar, Union

from . import _defaults
from ._backend import AsyncOperations, Backend, Exclude
from ._engine import Engine, handler_thread
from ._wire import Message
from .types import AckResult, ConnectionRequestContext, Context, RoomInfo

T = TypeVar("T")


class _Operations(AsyncOperations):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


class PyStrandsClient(Backend):
    """A backend for threaded code: subclass it and override the on_* methods.
    The operations are those of AsyncPyStrandsClient, blocking."""

    _start_lock = threading.Lock()
    _loop_thread: Optional[threading.Thread] = None

    def _call(self, coro: "Coroutine[Any, Any, T]") -> T:
        with self._start_lock:
            if self._loop_thread is None:
                loop = asyncio.new_event_loop()
                self._loop_thread = threading.Thread(target=_run_loop, args=(loop,), name="strands-backend-loop", daemon=True)
                self._loop_thread.start()
                self._loop = loop
                # The thread holds only the loop: once this client is gone, so is its thread.
                weakref.finalize(self, loop.call_soon_threadsafe, loop.stop)
        if threading.current_thread() is self._loop_thread:
            coro.close()
            raise RuntimeError("a blocking PyStrandsClient call from an async handler would deadlock; give the client plain methods")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @cached_property
    def _operations(self) -> _Operations:
        return _Operations(self._engine)

    # --- lifecycle ---------------------------------------------------------------

    def connect(self) -> bool:
        """One attempt; False on failure. Once up, the link is kept (and re-made) in the background."""
        return self._call(self._engine.connect())

    def disconnect(self, timeout: float = 5.0) -> None:
        """Stops reading, waits up to `timeout` s for running handlers, flushes and closes.
        Safe to call from a handler: that handler is not waited for."""
        if self._loop_thread is not None:
            self._call(self._engine.disconnect(timeout, getattr(handler_thread, "lane", None)))

    def run_forever(self) -> None:
        """Blocks until disconnect(). Ctrl-C disconnects, then KeyboardInterrupt propagates."""
        try:
            self._call(self._engine.run_forever())
        except KeyboardInterrupt:
            self.disconnect()
            raise

    def __enter__(self) -> "PyStrandsClient":
        self._call(self._engine.start())
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.disconnect()

    # --- operations (see AsyncOperations) -------------------------------------------

    def broadcast_message(self, message: Message, *, exclude: Exclude = None, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        return self._call(self._operations.broadcast_message(message, exclude=exclude, ack=ack, timeout=timeout))

    def send_room_message(self, room_id: str, message: Message, *, exclude: Exclude = None, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        return self._call(self._operations.send_room_message(room_id, message, exclude=exclude, ack=ack, timeout=timeout))

    def send_private_message(self, client_id: str, message: Message, *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        return self._call(self._operations.send_private_message(client_id, message, ack=ack, timeout=timeout))

    def join_room(self, client_id: str, room_id: str, *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        return self._call(self._operations.join_room(client_id, room_id, ack=ack, timeout=timeout))

    def leave_room(self, client_id: str, room_id: str, *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        return self._call(self._operations.leave_room(client_id, room_id, ack=ack, timeout=timeout))

    def disconnect_client(self, client_id: str, code: int = 1000, reason: str = "", *, ack: bool = False, timeout: Optional[float] = None) -> Optional[AckResult]:
        return self._call(self._operations.disconnect_client(client_id, code, reason, ack=ack, timeout=timeout))

    def room_info(self, room_id: str, *, timeout: Optional[float] = None) -> RoomInfo:
        return self._call(self._operations.room_info(room_id, timeout=timeout))

    # --- handlers: plain methods, run in the handler threads ---------------------------

    @_defaults.inline
    def on_connection_request(self, request: ConnectionRequestContext) -> Optional[bool]:
        """Return True/False, or set request.accepted (preset True) and return anything else."""
        return _defaults.on_connection_request(request)

    @_defaults.inline
    def on_new_connection(self, context: Context) -> None:
        _defaults.on_new_connection(context)

    @_defaults.inline
    def on_message(self, message: Union[str, bytes], context: Context) -> None:
        _defaults.on_message(message, context)

    @_defaults.inline
    def on_disconnect(self, context: Context) -> None:
        _defaults.on_disconnect(context)

    @_defaults.inline
    def on_error(self, error: str, context: Context) -> None:
        _defaults.on_error(error, context)
