"""The link to the broker, run on one asyncio event loop.

One engine serves each client class: it connects (and reconnects with
full-jitter backoff), writes lines in order, cuts what the broker sends into
lines, answers requests, and runs handlers: concurrently for different
clients, in order for each one (one lane per client_id).
"""

import asyncio
import inspect
import logging
import socket
import threading
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Deque, Dict, Hashable, Optional, Set, Tuple, TypeVar

from ._settings import Settings
from ._wire import ERROR_REQUEST_ID, LineSplitter, encode_line, new_request_id, parse_line, response_params, to_event
from .errors import (
    AuthenticationError,
    BrokerError,
    ConnectFailedError,
    ConnectionLostError,
    NotConnectedError,
    ProtocolError,
    RequestTimeoutError,
    SendBufferFullError,
)
from .types import ConnectEvent, ConnectionRequestContext, Context, DisconnectEvent, ErrorEvent, Event, MessageEvent

log = logging.getLogger("strands_backend")

READ_SIZE = 65536
# How long a disconnect waits for the broker to take what is still buffered for it, and for TLS to close.
CLOSE_GRACE = 2.0
# How long disconnect() reads after its end-of-file for the broker to close its side (it does at once).
GENTLE_CLOSE = 0.25
AUTH_FAILED = "authentication failed"

Callback = Callable[..., Any]
T = TypeVar("T")

# The lane of the handler running on this thread, so that a blocking disconnect() called from a
# handler does not wait for that handler to end.
handler_thread = threading.local()


def _run_handler(lane: Hashable, handler: Callback, args: Tuple[Any, ...]) -> Any:
    handler_thread.lane = lane
    try:
        return handler(*args)
    finally:
        handler_thread.lane = None


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """awaitable's result, or asyncio.TimeoutError after `timeout` s (it is then
    cancelled). Unlike asyncio.wait_for before Python 3.12, a cancellation that
    comes as the awaitable finishes is never lost."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
        raise asyncio.TimeoutError
    return task.result()


class _SilenceWatchdog:
    """Aborts a link on which a read has waited `limit` s for data: the broker
    sends heartbeats, so a silent link is a dead one. Time spent not reading
    (while handlers are behind) does not count."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: float, transport: asyncio.BaseTransport) -> None:
        self._loop = loop
        self._limit = limit
        self._transport = transport
        self._waiting_since: Optional[float] = None
        self.fired = False
        self._timer = loop.call_later(limit, self._check)

    def reading(self) -> None:
        self._waiting_since = self._loop.time()

    def heard(self) -> None:
        self._waiting_since = None

    def _check(self) -> None:
        now = self._loop.time()
        since = self._waiting_since
        if since is not None and now - since >= self._limit:
            self.fired = True
            log.warning("nothing from the broker for %s s (heartbeat_timeout): dropping the link", self._limit)
            self._transport.abort()
            return
        self._timer = self._loop.call_later((now if since is None else since) + self._limit - now, self._check)

    def stop(self) -> None:
        self._timer.cancel()


class _Channel:
    """A bounded queue from the lanes to one event stream. A full channel makes
    the lane wait (and so, in the end, the reading); a closed one takes nothing."""

    def __init__(self, capacity: int) -> None:
        self.items: Deque[Event] = deque()
        self.capacity = capacity
        self.closed = False
        self.error: Optional[BaseException] = None
        self._waiters: Deque["asyncio.Future[None]"] = deque()

    def _wake_all(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def put(self, event: Event) -> None:
        while not self.closed and len(self.items) >= self.capacity:
            await self._wait()
        if not self.closed:
            self.items.append(event)
            self._wake_all()

    async def get(self) -> Event:
        while not self.items:
            if self.closed:
                error, self.error = self.error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            await self._wait()
        event = self.items.popleft()
        self._wake_all()
        return event

    def close(self, error: Optional[BaseException] = None) -> None:
        if not self.closed:
            self.closed = True
            self.error = error
            self._wake_all()


class EventStream:
    """The client's events as typed objects, in order per client, for
    `async for`. Ends when the client disconnects (raising the error if it
    stopped on one). Holds at most max_pending_events; while it is full the
    client stops reading from the broker, so read it or close it."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        # Dropped without close(): stop holding events for it.
        weakref.finalize(self, channel.close)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        return await self._channel.get()

    def close(self) -> None:
        self._channel.close()
        self._channel.items.clear()


class Engine:
    def __init__(self, settings: Settings, callback: Callable[[str], Callback]) -> None:
        self.settings = settings
        self._callback = callback
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stream: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._reader_task: Optional["asyncio.Task[bool]"] = None
        self._supervisor: Optional["asyncio.Task[None]"] = None
        self._closing = False
        self._generation = 0
        self._auth_error: Optional[str] = None
        self._outbox: Deque[bytes] = deque()
        self._outbox_bytes = 0
        self._pending: Dict[str, "asyncio.Future[Dict[str, Any]]"] = {}
        self._lanes: Dict[Hashable, Deque[Any]] = {}
        self._lane_tasks: Dict[Hashable, "asyncio.Task[None]"] = {}
        self._channels: Set[_Channel] = set()
        self._executor: Optional[ThreadPoolExecutor] = None

    # --- state ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        writer = self._writer
        return writer is not None and not writer.transport.is_closing()

    @property
    def running(self) -> bool:
        return self._supervisor is not None and not self._supervisor.done()

    def _bind(self) -> None:
        """Makes the loop-bound objects on the running loop (Python 3.9 binds them when made)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self.running:
            raise RuntimeError("this client is running on another event loop")
        self._loop = loop
        self._slots = asyncio.Semaphore(self.settings.max_pending_events)
        self._drain_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._link_up = asyncio.Event()
        # Held while a link may be opened outside the supervisor, so there is never a second one.
        self._starting = asyncio.Lock()

    def _start(self, link_up: bool) -> "asyncio.Task[None]":
        self._closing = False
        self._stop.clear()
        supervisor = asyncio.get_running_loop().create_task(self._supervise(link_up))
        supervisor.add_done_callback(_report_stop)
        self._supervisor = supervisor
        return supervisor

    # --- lifecycle -------------------------------------------------------------

    async def connect(self) -> bool:
        """One attempt; on success the link is kept (and re-made) in the background."""
        self._bind()
        async with self._starting:
            if self.running:
                return self.connected
            self._closing = False
            self._stop.clear()
            if not await self._open():
                return False
            self._start(link_up=True)
            return True

    async def start(self) -> None:
        """Connects, retrying per the settings; raises if no attempt is left."""
        self._bind()
        async with self._starting:
            supervisor = self._supervisor if self.running else self._start(link_up=False)
        while not self.connected:
            if supervisor.done():
                supervisor.result()
                raise NotConnectedError("disconnected before the link was up")
            up = asyncio.get_running_loop().create_task(self._link_up.wait())
            try:
                await asyncio.wait({supervisor, up}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                supervisor.cancel()
                raise
            finally:
                up.cancel()

    async def run_forever(self) -> None:
        self._bind()
        async with self._starting:
            supervisor = self._supervisor if self.running else self._start(link_up=False)
        await supervisor

    async def disconnect(self, timeout: float = 5.0, spare_lane: Optional[Hashable] = None) -> None:
        """Stops reading, waits up to `timeout` s for running handlers (and what
        they send), flushes, closes. Handlers still running then are cancelled."""
        if self._loop is None:
            return
        self._bind()
        self._closing = True
        self._stop.set()
        reader = self._reader_task
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.wait({reader})
        # A handler that calls disconnect() is not waited for, nor cancelled: it goes on after the call.
        current = asyncio.current_task()
        spared = next((lane for lane, task in self._lane_tasks.items() if task is current), spare_lane)
        handlers = [task for lane, task in self._lane_tasks.items() if lane != spared]
        if handlers:
            _, late = await asyncio.wait(handlers, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("disconnect: cancelled %d handler(s) still running after %s s", len(late), timeout)
        writer = self._writer
        if writer is not None:
            try:
                await within(self._drain(), CLOSE_GRACE)
            except asyncio.TimeoutError:
                log.warning("disconnect: the broker did not take what was left to send within %s s", CLOSE_GRACE)
            else:
                try:
                    await within(self._close_gently(writer), GENTLE_CLOSE)
                except asyncio.TimeoutError:
                    pass  # The broker did not close its side at once: the link is closed from here all the same.
        self._teardown(None, spared)
        if writer is not None:
            try:
                await within(writer.wait_closed(), CLOSE_GRACE)
            except (asyncio.TimeoutError, OSError):
                writer.transport.abort()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not current and not supervisor.done():
            await asyncio.wait({supervisor})

    async def _close_gently(self, writer: asyncio.StreamWriter) -> None:
        """Half-closes and reads (discarding) until the broker closes its side:
        closing with unread bytes would send a reset, which the broker logs as
        a socket error."""
        stream = self._stream
        if stream is None or not writer.can_write_eof():
            return
        writer.write_eof()
        try:
            while await stream.read(READ_SIZE):
                pass
        except (OSError, asyncio.IncompleteReadError):
            pass

    # --- the link --------------------------------------------------------------

    async def _supervise(self, link_up: bool) -> None:
        s = self.settings
        failures = 0
        error: Optional[BaseException] = None
        try:
            while not self._closing:
                if link_up or await self._open():
                    link_up = False
                    healthy = await self._hold_link()
                    if self._closing:
                        return
                    if self._auth_error is not None:
                        raise AuthenticationError(self._auth_error)
                    if not s.auto_reconnect:
                        raise ConnectionLostError("the link to the broker was lost and auto_reconnect is off")
                    # A link that ends before the broker said anything counts as a failed attempt,
                    # so a broker that accepts and drops at once is not hammered.
                    failures = 0 if healthy else failures + 1
                elif self._closing:
                    return
                elif not s.auto_reconnect:
                    raise ConnectFailedError(f"cannot connect to the broker at {s.host}:{s.port} and auto_reconnect is off")
                else:
                    failures += 1
                if s.max_reconnect_attempts is not None and failures >= s.max_reconnect_attempts:
                    raise ConnectFailedError(f"gave up after {failures} failed attempts to reach the broker at {s.host}:{s.port}")
                wait = s.reconnect_wait(failures)
                log.info("reconnecting to the broker in %.2f s", wait)
                stop = asyncio.get_running_loop().create_task(self._stop.wait())
                try:
                    await asyncio.wait({stop}, timeout=wait)
                finally:
                    stop.cancel()
        except BaseException as exc:
            error = exc
            raise
        finally:
            if not self._closing:
                self._teardown(error)

    async def _open(self) -> bool:
        s = self.settings
        tls: Dict[str, Any] = {"ssl": s.ssl_context, "server_hostname": s.server_hostname} if s.ssl_context else {}
        loop = asyncio.get_running_loop()
        connecting = loop.create_task(asyncio.open_connection(s.host, s.port, **tls))
        stopping = loop.create_task(self._stop.wait())
        try:
            # disconnect() does not wait out a connection attempt
            await asyncio.wait({connecting, stopping}, timeout=s.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not connecting.done():
                connecting.cancel()
        await asyncio.wait({connecting})
        if connecting.cancelled():
            if not self._closing:
                log.warning("cannot connect to the broker at %s:%s: no answer within %s s", s.host, s.port, s.connect_timeout)
            return False
        error = connecting.exception()
        if isinstance(error, OSError):
            log.warning("cannot connect to the broker at %s:%s: %s", s.host, s.port, error)
            return False
        reader, writer = connecting.result()
        if self._closing:
            writer.close()
            return False
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError:
                pass
        self._generation += 1
        self._auth_error = None
        if s.token is not None:
            writer.write(encode_line("auth", new_request_id(), {"token": s.token}))
        while self._outbox:
            writer.write(self._outbox.popleft())
        self._outbox_bytes = 0
        self._writer = writer
        self._stream = reader
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader, writer, self._generation))
        self._link_up.set()
        log.info("connected to the broker at %s:%s", s.host, s.port)
        return True

    async def _hold_link(self) -> bool:
        """Waits for the link to end; True if the broker sent a line on it."""
        reader = self._reader_task
        assert reader is not None
        await asyncio.wait({reader})
        return not reader.cancelled() and reader.exception() is None and reader.result()

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, generation: int) -> bool:
        silence = self.settings.heartbeat_timeout
        watchdog = None if silence is None else _SilenceWatchdog(asyncio.get_running_loop(), silence, writer.transport)
        splitter = LineSplitter(self.settings.max_line)
        heard = False
        try:
            while True:
                if watchdog is not None:
                    watchdog.reading()
                data = await reader.read(READ_SIZE)
                if watchdog is not None:
                    watchdog.heard()
                if not data:
                    if watchdog is None or not watchdog.fired:
                        log.warning("the broker closed the link")
                    return heard
                lines, dropped = splitter.feed(data)
                if dropped:
                    log.warning("skipped %d line(s) longer than max_line (%d bytes)", dropped, self.settings.max_line)
                for line in lines:
                    await self._on_line(line, first=not heard)
                    heard = True
        except OSError as exc:
            log.warning("the link to the broker failed: %s", exc)
            return heard
        except Exception:
            log.exception("dropping the link after an unexpected error")
            return heard
        finally:
            if watchdog is not None:
                watchdog.stop()
            # On disconnect() the link is closed there, after the handlers' last sends.
            if not self._closing:
                self._drop_link(writer, generation)

    def _drop_link(self, writer: asyncio.StreamWriter, generation: int) -> None:
        writer.close()
        if generation != self._generation or self._writer is not writer:
            return
        self._writer = None
        self._link_up.clear()
        self._fail_pending(ConnectionLostError("the link to the broker was lost before the answer came"))

    def _fail_pending(self, error: BaseException) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    def _teardown(self, error: Optional[BaseException], spared: Optional[Hashable] = None) -> None:
        """Ends everything: used once the client stops, on purpose or not. The
        spared lane's running handler finishes; what waits behind it is dropped."""
        reader = self._reader_task
        if reader is not None and not reader.done():
            reader.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._link_up.clear()
        for lane_key, task in list(self._lane_tasks.items()):
            if lane_key != spared:
                task.cancel()
                continue
            lane = self._lanes[lane_key]
            while len(lane) > 1:
                lane.pop()
                self._slots.release()
        self._fail_pending(NotConnectedError("the client stopped before the answer came"))
        if self._outbox:
            log.warning("dropped %d line(s) never sent: the client stopped while the link was down", len(self._outbox))
            self._outbox.clear()
            self._outbox_bytes = 0
        stream_error = error if isinstance(error, Exception) else None
        for channel in self._channels:
            channel.close(stream_error)
        self._channels.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # --- what the broker sends ---------------------------------------------------

    async def _on_line(self, line: bytes, first: bool) -> None:
        try:
            action, request_id, params = parse_line(line)
            if action == "response":
                self._settle(request_id, params)
                return
            event = to_event(action, request_id, params)
        except ProtocolError as exc:
            log.warning("skipped a line from the broker: %s", exc)
            return
        if event is None:
            # heartbeat (the read itself proves the broker is there) or an action this version does not know
            return
        if isinstance(event, ConnectionRequestContext):
            await self._dispatch(("request", event.request_id), event)
            return
        if isinstance(event, ErrorEvent):
            if first and event.error.startswith(AUTH_FAILED):
                self._auth_error = event.error
            if self._refuse_request(event.error):
                return
        await self._dispatch(("client", event.context.client_id), event)

    def _settle(self, request_id: Optional[str], params: Dict[str, Any]) -> None:
        future = self._pending.get(request_id) if request_id is not None else None
        if future is None:
            log.debug("ignored a response to a request this client did not make: %s", request_id)
        elif not future.done():
            future.set_result(params)

    def _refuse_request(self, error: str) -> bool:
        """Fails the waiting request an error event names, if any."""
        match = ERROR_REQUEST_ID.search(error)
        future = self._pending.get(match.group(1)) if match else None
        if future is None:
            return False
        if not future.done():
            future.set_exception(BrokerError(error))
        return True

    async def _dispatch(self, lane_key: Hashable, event: Any) -> None:
        # Waits while max_pending_events are unhandled: the broker then sees this backend fall behind.
        await self._slots.acquire()
        lane = self._lanes.get(lane_key)
        if lane is not None:
            lane.append(event)
            return
        lane = self._lanes[lane_key] = deque([event])
        self._lane_tasks[lane_key] = asyncio.get_running_loop().create_task(self._run_lane(lane_key, lane))

    async def _run_lane(self, lane_key: Hashable, lane: Deque[Any]) -> None:
        try:
            while lane:
                try:
                    await self._handle(lane_key, lane[0])
                finally:
                    lane.popleft()
                    self._slots.release()
        finally:
            for _ in lane:
                self._slots.release()
            lane.clear()
            if self._lanes.get(lane_key) is lane:
                del self._lanes[lane_key]
                del self._lane_tasks[lane_key]

    async def _handle(self, lane_key: Hashable, event: Any) -> None:
        if isinstance(event, ConnectionRequestContext):
            await self._admit(lane_key, event)
            return
        if isinstance(event, MessageEvent):
            name, args = "on_message", (event.message, event.context)
        elif isinstance(event, ConnectEvent):
            name, args = "on_new_connection", (event.context,)
        elif isinstance(event, DisconnectEvent):
            name, args = "on_disconnect", (event.context,)
        else:
            name, args = "on_error", (event.error, event.context)
        try:
            await self._invoke(lane_key, name, args)
        except Exception:
            log.exception("%s handler failed", name)
        for channel in list(self._channels):
            if channel.closed:
                self._channels.discard(channel)
            else:
                await channel.put(event)

    async def _invoke(self, lane_key: Hashable, name: str, args: Tuple[Any, ...]) -> Any:
        handler = self._callback(name)
        if inspect.iscoroutinefunction(handler):
            return await handler(*args)
        if getattr(handler, "strands_inline", False):
            return handler(*args)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.settings.handler_threads, thread_name_prefix="strands-handler")
        result = await asyncio.get_running_loop().run_in_executor(self._executor, _run_handler, lane_key, handler, args)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _admit(self, lane_key: Hashable, request: ConnectionRequestContext) -> None:
        generation = self._generation
        request.context = Context(new_request_id(), request.url, {})
        request.accepted = True
        try:
            decision = await self._invoke(lane_key, "on_connection_request", (request,))
            accepted = decision if isinstance(decision, bool) else request.accepted
            line = encode_line("response", request.request_id, response_params(request, accepted))
        except Exception:
            log.exception("on_connection_request failed: rejecting the client")
            line = encode_line("response", request.request_id, {"accepted": False})
        if generation != self._generation or not self.connected:
            # The broker gives a request whose link died to another backend.
            log.warning("dropped the answer to connection request %s: the link it came on is gone", request.request_id)
            return
        await self._write(line)

    # --- what this backend sends ---------------------------------------------------

    async def _drain(self) -> None:
        writer = self._writer
        if writer is None:
            return
        async with self._drain_lock:
            try:
                await writer.drain()
            except OSError:
                pass  # the reader sees the link end and reports it

    async def _write(self, line: bytes) -> None:
        assert self._writer is not None
        self._writer.write(line)
        await self._drain()

    async def send(self, line: bytes) -> None:
        """Writes a line, or holds it for the next link when one is coming."""
        if self.connected:
            await self._write(line)
            return
        if not self.running or self._closing or not self.settings.auto_reconnect:
            raise NotConnectedError("not connected to the broker")
        if self._outbox_bytes + len(line) > self.settings.send_buffer_size:
            raise SendBufferFullError(f"the link is down and the send buffer holds {self._outbox_bytes} bytes (send_buffer_size {self.settings.send_buffer_size})")
        self._outbox.append(line)
        self._outbox_bytes += len(line)

    async def request(self, action: str, params: Dict[str, Any], timeout: Optional[float], ack: bool = False) -> Dict[str, Any]:
        """Sends a line and waits for the `response` with its request_id."""
        if not self.connected:
            raise NotConnectedError(f"{action} needs a live link to the broker")
        wait = self.settings.request_timeout if timeout is None else timeout
        request_id = new_request_id()
        line = encode_line(action, request_id, params, ack)
        future: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._write(line)
            try:
                return await within(future, wait)
            except asyncio.TimeoutError:
                raise RequestTimeoutError(f"no answer to {action} (request_id {request_id}) within {wait} s") from None
        finally:
            del self._pending[request_id]

    def events(self) -> EventStream:
        self._bind()
        channel = _Channel(self.settings.max_pending_events)
        self._channels.add(channel)
        return EventStream(channel)


def _report_stop(supervisor: "asyncio.Task[None]") -> None:
    if not supervisor.cancelled() and supervisor.exception() is not None:
        log.error("the client stopped: %s", supervisor.exception())
