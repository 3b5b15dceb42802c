"""Helpers shared by the tests: a client that records its events, and running one."""

import asyncio
import contextlib
from typing import Any, AsyncIterator, Tuple

from broker_process import BrokerProcess
from strands_backend import AsyncPyStrandsClient

FAST = {"reconnect_delay": 0.02, "max_reconnect_delay": 0.1}


class Recorder(AsyncPyStrandsClient):
    """Puts every event in `events` as (kind, *args); accepts every client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: "asyncio.Queue[Tuple[Any, ...]]" = asyncio.Queue()

    async def next(self, kind: str, timeout: float = 10.0) -> Tuple[Any, ...]:
        """The next event of that kind (others before it are dropped)."""
        while True:
            event = await asyncio.wait_for(self.events.get(), timeout)
            if event[0] == kind:
                return event[1:]

    async def on_new_connection(self, context):
        await self.events.put(("connect", context))

    async def on_message(self, message, context):
        await self.events.put(("message", message, context))

    async def on_disconnect(self, context):
        await self.events.put(("disconnect", context))

    async def on_error(self, error, context):
        await self.events.put(("error", error, context))


@contextlib.asynccontextmanager
async def running(client: AsyncPyStrandsClient, connected: bool = True) -> AsyncIterator["asyncio.Task[None]"]:
    """Runs client.run_forever() for the block (once connected, unless told not
    to wait), then disconnects it."""
    task = asyncio.get_running_loop().create_task(client.run_forever())
    try:
        if connected:
            await until(lambda: client.connected or task.done())
        yield task
    finally:
        await client.disconnect(timeout=1.0)
        await asyncio.wait({task}, timeout=5.0)
        assert task.done()


async def until(predicate: Any, timeout: float = 5.0) -> None:
    """Waits (yielding to the loop) until predicate() is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def attached(broker: BrokerProcess, client: AsyncPyStrandsClient) -> AsyncIterator[None]:
    """The client runs for the block, and the broker has taken it in (and, after, let it go)."""
    mark = broker.mark()
    async with running(client):
        await asyncio.to_thread(broker.wait_log, "backend connected", mark)
        yield
        mark = broker.mark()
    await asyncio.to_thread(broker.wait_log, "backend disconnected", mark)
