"""The client against a broker played by the test: the exact lines it writes,
what it does with what it reads, reconnects, timeouts and faults."""

import asyncio
import contextlib
import json
from dataclasses import replace
import ssl
import threading
import time

import pytest

from fake_broker import FakeBroker, line_of
from strands_backend import (
    AckResult,
    AsyncPyStrandsClient,
    AuthenticationError,
    BrokerError,
    ConnectEvent,
    ConnectFailedError,
    ConnectionLostError,
    Context,
    DisconnectEvent,
    ErrorEvent,
    MessageEvent,
    NotConnectedError,
    ProtocolError,
    PyStrands,
    PyStrandsClient,
    RequestTimeoutError,
    RoomInfo,
    SendBufferFullError,
)
from support import FAST, Recorder, running, until

CONTEXT = {"client_id": "c1", "room_id": "/ws/lobby", "metadata": {"k": "v"}}


@pytest.fixture
async def linked(fake):
    """A running AsyncPyStrandsClient and the fake broker's end of its link."""
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, **FAST)
    async with running(client):
        yield client, await fake.link()


async def test_every_operation_writes_the_exact_line_of_the_spec(fake):
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, token="s3cret", **FAST)
    async with running(client):
        link = await fake.link()
        await link.expect("auth", {"token": "s3cret"})
        await client.broadcast_message("hé")
        await link.expect("broadcast", {"message": "hé"})
        await client.broadcast_message("x", exclude="c1")
        await link.expect("broadcast", {"message": "x", "exclude": "c1"})
        await client.send_room_message("r", "hi")
        await link.expect("message_to_room", {"room_id": "r", "message": "hi"})
        await client.send_room_message("r", b"\x00\x01\xfe", exclude=["a", "b"])
        await link.expect("message_to_room", {"room_id": "r", "message": "AAH+", "binary": True, "exclude": ["a", "b"]})
        await client.send_private_message("c1", "yo")
        await link.expect("message_to_connection", {"conn_id": "c1", "message": "yo"})
        await client.send_private_message("c1", b"bin")
        await link.expect("message_to_connection", {"conn_id": "c1", "message": "Ymlu", "binary": True})
        await client.join_room("c1", "r2")
        await link.expect("join_room", {"conn_id": "c1", "room_id": "r2"})
        await client.leave_room("c1", "r2")
        await link.expect("leave_room", {"conn_id": "c1", "room_id": "r2"})
        await client.disconnect_client("c1", 4001, "bye")
        await link.expect("disconnect", {"conn_id": "c1", "code": 4001, "reason": "bye"})
        await client.disconnect_client("c2")
        await link.expect("disconnect", {"conn_id": "c2", "code": 1000, "reason": ""})


async def exchange(link, request, action, params, answer, ack=False):
    """Starts `request`, checks the line it writes, answers it: what the request returns (or raises)."""
    pending = asyncio.ensure_future(request)
    request_id = await link.expect(action, params, ack)
    await link.event("response", {"ok": True, "delivered": 99}, request_id="not-asked-for")  # ignored
    await link.event("response", answer, request_id=request_id)
    return await pending


async def test_acked_sends_return_the_brokers_answer(linked):
    client, link = linked
    sent = client.send_room_message("r", "hi", exclude="c9", ack=True)
    assert await exchange(link, sent, "message_to_room", {"room_id": "r", "message": "hi", "exclude": "c9"}, {"ok": True, "delivered": 3}, ack=True) == AckResult(True, 3, None)
    refused = client.join_room("c1", "r", ack=True)
    assert await exchange(link, refused, "join_room", {"conn_id": "c1", "room_id": "r"}, {"ok": False, "delivered": 0, "error": "too many rooms"}, ack=True) == AckResult(False, 0, "too many rooms")
    with pytest.raises(ProtocolError):
        await exchange(link, client.broadcast_message("x", ack=True), "broadcast", {"message": "x"}, {"ok": "yes"}, ack=True)


async def test_room_info_follows_every_page(linked):
    client, link = linked
    info = asyncio.ensure_future(client.room_info("lobby"))
    first = await link.expect("room_info", {"room_id": "lobby"})
    await link.event("response", {"room_id": "lobby", "count": 3, "client_ids": ["a", "b"], "next": "b", "nodes": 2, "nodes_total": 2}, request_id=first)
    last_page = {"room_id": "lobby", "count": 3, "client_ids": ["c"], "nodes": 2, "nodes_total": 3}
    assert await exchange(link, info, "room_info", {"room_id": "lobby", "cursor": "b"}, last_page) == RoomInfo("lobby", 3, ["a", "b", "c"], 2, 3)
    with pytest.raises(ProtocolError):  # a page that does not advance
        await exchange(link, client.room_info("lobby"), "room_info", {"room_id": "lobby"}, {"room_id": "lobby", "count": 1, "client_ids": [], "next": "a"})


async def test_requests_fail_on_an_error_event_a_timeout_or_a_lost_link(linked):
    client, link = linked
    unknown = asyncio.ensure_future(client.room_info("r"))
    request_id = await link.expect("room_info", {"room_id": "r"})
    await link.event("error", {"error": f'unknown action "room_info" (request_id {request_id})', "context": {}})
    with pytest.raises(BrokerError, match="unknown action"):
        await unknown

    with pytest.raises(RequestTimeoutError):
        await client.join_room("c1", "r", ack=True, timeout=0.1)
    await link.line()

    lost = asyncio.ensure_future(client.leave_room("c1", "r", ack=True))
    await link.line()
    link.close()
    with pytest.raises(ConnectionLostError):
        await lost
    await until(lambda: not client.connected)
    with pytest.raises(NotConnectedError):
        await client.room_info("r")


async def test_connection_requests_are_answered_with_the_handlers_decision(fake):
    decisions = []

    class Gate(AsyncPyStrandsClient):
        async def on_connection_request(self, request):
            decisions.append((request.url, request.query, request.header("user-agent"), replace(request.context), request.accepted))
            if request.url == "/accept":
                request.context.room_id = "lobby"
                request.context.metadata = {"user": request.query_param("u")}
                return True
            if request.url == "/reject":
                return False
            if request.url == "/flag":
                request.accepted = False
                return "not a bool"
            if request.url == "/unserializable":
                request.context.metadata = {"x": object()}
                return True
            raise RuntimeError("handler bug")

    client = Gate("127.0.0.1", fake.port, **FAST)
    async with running(client):
        link = await fake.link()
        for n, url in enumerate(["/accept", "/reject", "/flag", "/unserializable", "/boom"]):
            await link.event("connection_request", {"headers": {"User-Agent": ["ua"]}, "url": url, "remote_addr": "1.2.3.4", "query": "u=ann"}, request_id=f"q{n}")
            raw = await link.line()
            answer = json.loads(raw)
            assert answer["action"] == "response" and answer["request_id"] == f"q{n}"
            if url == "/accept":
                client_id = answer["params"]["client_id"]
                assert raw == line_of("response", "q0", {"accepted": True, "client_id": client_id, "room_id": "lobby", "metadata": {"user": "ann"}})
            elif url in ("/reject", "/flag"):
                assert answer["params"]["accepted"] is False and answer["params"]["room_id"] == url
            else:
                assert raw == line_of("response", f"q{n}", {"accepted": False})
    url, query, agent, context, accepted = decisions[0]
    assert (url, query, agent, accepted) == ("/accept", "u=ann", "ua", True)
    assert context.room_id == "/accept" and context.metadata == {} and len(context.client_id) == 36


async def test_events_reach_the_handlers_typed(fake):
    client = Recorder("127.0.0.1", fake.port, **FAST)
    async with running(client):
        link = await fake.link()
        await link.event("new_connection", {"context": CONTEXT})
        await link.event("new_message", {"message": "hello", "context": CONTEXT})
        await link.event("new_message", {"message": "AAEC/w==", "binary": True, "context": CONTEXT})
        await link.event("new_message", {"message": "AAEC/w", "binary": True, "context": CONTEXT})
        await link.send(b"this is not json\n")
        await link.event("heartbeat", {}, request_id="heartbeat")
        await link.event("some_future_action", {})
        await link.event("disconnected", {"context": CONTEXT})
        await link.event("error", {"error": "bad line", "context": {}})
        context = Context("c1", "/ws/lobby", {"k": "v"})
        assert await client.next("connect") == (context,)
        assert await client.next("message") == ("hello", context)
        assert await client.next("message") == (b"\x00\x01\x02\xff", context)
        assert await client.next("message") == (b"\x00\x01\x02\xff", context)
        assert await client.next("disconnect") == (context,)
        assert await client.next("error") == ("bad line", Context())


async def test_a_character_split_across_reads_survives(fake):
    client = Recorder("127.0.0.1", fake.port, **FAST)
    async with running(client):
        link = await fake.link()
        line = json.dumps({"request_id": "1", "action": "new_message", "params": {"message": "€uro😀", "context": CONTEXT}}, ensure_ascii=False).encode() + b"\n"
        cut = line.index("€".encode()) + 1
        await link.send(line[:cut])
        # Client and fake share this loop, and loopback delivers at once: a few turns let the client read the first half alone.
        for _ in range(5):
            await asyncio.sleep(0)
        await link.send(line[cut:])
        message, _ = await client.next("message")
        assert message == "€uro😀"


@pytest.mark.parametrize("kind", ["async def", "plain def"])
async def test_handlers_of_different_clients_run_concurrently_and_each_clients_in_order(fake, kind):
    app = PyStrands("127.0.0.1", fake.port, **FAST)
    b_seen = threading.Event()
    order = []
    loop_thread = threading.current_thread()

    def handle(message, context):
        if context.client_id == "b":
            b_seen.set()
        elif message != "wait-for-b":
            order.append(int(message))

    if kind == "async def":
        @app.on_message
        async def on_message(message, context):
            if message == "wait-for-b":
                assert await asyncio.to_thread(b_seen.wait, 5)  # False if handlers ran one after another
            await asyncio.sleep(0.001 * (hash(message) % 3))  # would reorder one client's handlers if they overlapped
            handle(message, context)
    else:
        @app.on_message
        def on_message(message, context):
            assert threading.current_thread() is not loop_thread
            if message == "wait-for-b":
                assert b_seen.wait(5)
            handle(message, context)

    async with running(app):
        link = await fake.link()
        a = {"client_id": "a", "room_id": "", "metadata": {}}
        await link.event("new_message", {"message": "wait-for-b", "context": a})
        await link.event("new_message", {"message": "go", "context": {"client_id": "b", "room_id": "", "metadata": {}}})
        for n in range(30):
            await link.event("new_message", {"message": str(n), "context": a})
        await until(lambda: len(order) == 30)
        assert order == list(range(30))


async def test_unhandled_events_are_bounded_and_reading_waits_for_handlers(fake):
    gate = asyncio.Event()
    handled = []

    class Busy(AsyncPyStrandsClient):
        async def on_message(self, message, context):
            await gate.wait()
            if message == "boom":
                raise RuntimeError("a handler bug does not stop the client")
            handled.append((context.client_id, int(message)))

    client = Busy("127.0.0.1", fake.port, max_pending_events=3, **FAST)
    async with running(client):
        link = await fake.link()
        for n in range(40):
            await link.event("new_message", {"message": str(n), "context": {"client_id": f"c{n % 4}", "room_id": "", "metadata": {}}})
        other = {"client_id": "other", "room_id": "", "metadata": {}}
        await link.event("new_message", {"message": "boom", "context": other})
        await link.event("new_message", {"message": "40", "context": other})
        engine = client._engine
        await until(lambda: sum(map(len, engine._lanes.values())) == 3)
        for _ in range(20):  # the reader has every line at hand, yet takes no more
            await asyncio.sleep(0)
        assert sum(map(len, engine._lanes.values())) == 3
        gate.set()
        await until(lambda: len(handled) == 41)
        for client_id in ("c0", "c1", "c2", "c3"):
            assert [n for c, n in handled if c == client_id] == list(range(int(client_id[1]), 40, 4))
        assert ("other", 40) in handled


async def test_the_first_connect_is_retried_until_the_broker_appears():
    placeholder = await FakeBroker().start()
    port = placeholder.port
    placeholder.stop()
    client = AsyncPyStrandsClient("127.0.0.1", port, **FAST)
    async with running(client, connected=False) as task:
        assert await client.connect() is False  # the supervisor is retrying; connect() does not race it
        late = await FakeBroker().start(port)
        try:
            await late.link()
            await until(lambda: client.connected)
            assert not task.done()
        finally:
            late.stop()


async def test_connect_is_one_attempt_and_run_forever_gives_up_after_the_limit():
    placeholder = await FakeBroker().start()
    port = placeholder.port
    placeholder.stop()
    assert await AsyncPyStrandsClient("127.0.0.1", port).connect() is False
    with pytest.raises(ConnectFailedError, match="3 failed attempts"):
        await asyncio.wait_for(AsyncPyStrandsClient("127.0.0.1", port, max_reconnect_attempts=3, **FAST).run_forever(), 5)
    with pytest.raises(ConnectFailedError, match="auto_reconnect is off"):
        await asyncio.wait_for(AsyncPyStrandsClient("127.0.0.1", port, auto_reconnect=False).run_forever(), 5)


async def test_a_silent_broker_is_noticed_and_the_link_made_again(fake):
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, heartbeat_timeout=0.3, **FAST)
    async with running(client):
        first = await fake.link()
        started = time.monotonic()
        await first.event("heartbeat", {}, request_id="heartbeat")
        assert await first.eof() == b""  # the client gave up on the silent link
        assert time.monotonic() - started >= 0.3
        second = await fake.link()
        await second.event("new_message", {"message": "x", "context": CONTEXT})
        await until(lambda: client.connected)


async def test_sends_while_the_link_is_down_wait_in_a_bounded_buffer(fake):
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, send_buffer_size=300, **FAST)
    async with running(client):
        link = await fake.link()
        port = fake.port
        fake.stop_listening()
        link.close()
        await until(lambda: not client.connected)
        await client.broadcast_message("kept 1")
        await client.send_room_message("r", "kept 2")
        with pytest.raises(SendBufferFullError):
            await client.broadcast_message("x" * 100)
        with pytest.raises(NotConnectedError):
            await client.broadcast_message("kept?", ack=True)
        await fake.start(port)
        relinked = await fake.link()
        await relinked.expect("broadcast", {"message": "kept 1"})
        await relinked.expect("message_to_room", {"room_id": "r", "message": "kept 2"})


async def test_sends_with_no_link_coming_raise(fake):
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, auto_reconnect=False)
    with pytest.raises(NotConnectedError):
        await client.broadcast_message("before connect")
    task = asyncio.ensure_future(client.run_forever())
    link = await fake.link()
    link.close()
    with pytest.raises(ConnectionLostError):
        await task
    with pytest.raises(NotConnectedError):
        await client.broadcast_message("after the link died")
    with pytest.raises(TypeError):
        await client.broadcast_message(12)


async def test_cancelling_run_forever_propagates_and_closes_the_link(fake):
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, **FAST)
    task = asyncio.ensure_future(client.run_forever())
    link = await fake.link()
    await until(lambda: client.connected)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await link.eof() == b""
    assert not client.connected

    fake.stop_listening()
    retrying = asyncio.ensure_future(client.run_forever())
    await asyncio.sleep(0.05)  # let it fail an attempt and sit in its backoff
    retrying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(retrying, 2)


async def test_connect_again_after_disconnect_and_never_two_links(fake):
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, **FAST)
    for attempt in range(2):
        assert await asyncio.gather(client.connect(), client.connect()) == [True, True]
        forever = asyncio.ensure_future(client.run_forever())  # joins the link connect() made
        await client.broadcast_message(f"round {attempt}")
        link = await fake.link()
        await link.expect("broadcast", {"message": f"round {attempt}"})
        assert fake.links.empty() and len(fake.accepted) == attempt + 1
        await client.disconnect()
        await forever
        assert await link.eof() == b""


async def test_disconnect_does_not_wait_out_a_stalled_connection_attempt(fake):
    client = AsyncPyStrandsClient("127.0.0.1", fake.port, ssl=True, connect_timeout=60)  # the fake never answers a TLS hello
    task = asyncio.ensure_future(client.run_forever())
    await fake.link()
    await asyncio.wait_for(client.disconnect(), 5)
    await asyncio.wait_for(task, 5)
    assert not client.connected


async def test_a_refused_token_stops_the_client(fake):
    client = Recorder("127.0.0.1", fake.port, token="wrong", **FAST)
    task = asyncio.ensure_future(client.run_forever())
    link = await fake.link()
    await link.expect("auth", {"token": "wrong"})
    await link.event("error", {"error": "authentication failed: invalid token", "context": {}})
    link.close()
    with pytest.raises(AuthenticationError, match="invalid token"):
        await asyncio.wait_for(task, 5)
    assert (await client.next("error"))[0] == "authentication failed: invalid token"


async def test_disconnect_waits_for_running_handlers_and_their_sends(fake):
    started = asyncio.Event()

    class Slow(AsyncPyStrandsClient):
        async def on_message(self, message, context):
            started.set()
            await asyncio.sleep(0.2)
            await self.send_private_message(context.client_id, "late reply")

    client = Slow("127.0.0.1", fake.port, **FAST)
    task = asyncio.ensure_future(client.run_forever())
    link = await fake.link()
    await link.event("new_message", {"message": "x", "context": CONTEXT})
    await started.wait()
    await client.disconnect(timeout=5)
    rest = await link.eof()
    assert [json.loads(line)["params"] for line in rest.splitlines()] == [{"conn_id": "c1", "message": "late reply"}]
    await task  # run_forever returns after disconnect()


async def test_disconnect_from_a_handler_neither_waits_for_nor_cancels_it(fake):
    seen = []

    class Quitter(AsyncPyStrandsClient):
        async def on_message(self, message, context):
            seen.append(message)
            if message == "quit":
                await self.disconnect(timeout=30)
                seen.append("went on after disconnect()")

    client = Quitter("127.0.0.1", fake.port, **FAST)
    task = asyncio.ensure_future(client.run_forever())
    link = await fake.link()
    started = time.monotonic()
    for message in ("quit", "queued behind it"):
        await link.event("new_message", {"message": message, "context": CONTEXT})
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 5
    assert await link.eof() == b""
    await until(lambda: len(seen) == 2)
    assert seen == ["quit", "went on after disconnect()"]


async def test_an_answer_for_a_link_that_died_is_not_sent_on_the_next_one(fake):
    release = asyncio.Event()

    class Held(AsyncPyStrandsClient):
        async def on_connection_request(self, request):
            if request.request_id == "old":
                await release.wait()
            return True

    client = Held("127.0.0.1", fake.port, **FAST)
    async with running(client):
        first = await fake.link()
        await first.event("connection_request", {"headers": {}, "url": "/", "remote_addr": "", "query": ""}, request_id="old")
        await until(lambda: bool(client._engine._lanes))
        first.close()
        second = await fake.link()
        release.set()
        await second.event("connection_request", {"headers": {}, "url": "/", "remote_addr": "", "query": ""}, request_id="new")
        assert json.loads(await second.line())["request_id"] == "new"


async def test_async_with_and_typed_event_stream(fake):
    async with AsyncPyStrandsClient("127.0.0.1", fake.port, **FAST) as client:
        assert client.connected
        events = client.events()
        link = await fake.link()
        await link.event("new_connection", {"context": CONTEXT})
        await link.event("new_message", {"message": "hi", "context": CONTEXT})
        await link.event("new_message", {"message": "AQI=", "binary": True, "context": CONTEXT})
        await link.event("disconnected", {"context": CONTEXT})
        await link.event("error", {"error": "oops", "context": {}})
        context = Context("c1", "/ws/lobby", {"k": "v"})
        got = [await asyncio.wait_for(events.__anext__(), 5) for _ in range(5)]
        assert got == [ConnectEvent(context), MessageEvent("hi", context), MessageEvent(b"\x01\x02", context), DisconnectEvent(context), ErrorEvent("oops", Context())]
        assert got[2].binary and not got[1].binary
    assert not client.connected
    assert [event async for event in events] == []  # the stream ends with the client
    assert await link.eof() == b""


async def test_tls_with_a_cafile_and_the_token_inside_it(fake, tls_cert):
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tls_cert / "cert.pem", tls_cert / "key.pem")
    secure = await FakeBroker().start(tls=server_tls)
    try:
        client = AsyncPyStrandsClient("127.0.0.1", secure.port, token="t", cafile=str(tls_cert / "cert.pem"), server_hostname="localhost", **FAST)
        async with running(client):
            link = await secure.link()
            await link.expect("auth", {"token": "t"})
            await client.broadcast_message("over tls")
            await link.expect("broadcast", {"message": "over tls"})
        untrusting = AsyncPyStrandsClient("127.0.0.1", secure.port, ssl=True, auto_reconnect=False)
        assert await untrusting.connect() is False  # a self-signed certificate is not in the system store
    finally:
        secure.stop()


@contextlib.contextmanager
def fake_in_own_loop():
    """For tests of the blocking client: a fake broker on a loop that runs only inside loop.run_until_complete."""
    async def start():  # made inside the loop: Python 3.9 binds a Queue to the loop current when it is made
        return await FakeBroker().start()

    loop = asyncio.new_event_loop()
    broker = loop.run_until_complete(start())
    try:
        yield loop, broker
    finally:
        broker.stop()
        loop.close()


def test_the_sync_client_writes_whole_lines_from_many_threads():
    payload = "é" * 3000  # 18 KB lines: many writes each, interleaved if unsynchronised

    with fake_in_own_loop() as (loop, broker):
        client = PyStrandsClient("127.0.0.1", broker.port, **FAST)
        assert client.connect() is True
        try:
            link = loop.run_until_complete(broker.link())

            def sender(n):
                for i in range(50):
                    client.send_room_message(f"room{n}", f"{n}:{i}:{payload}")

            threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            seen = {}
            for _ in range(400):  # read while they send: the fake's loop runs only here
                line = json.loads(loop.run_until_complete(link.line()))
                n, i, rest = line["params"]["message"].split(":", 2)
                assert line["params"]["room_id"] == f"room{n}" and rest == payload
                assert seen.get(n, -1) == int(i) - 1  # each thread's lines in its order
                seen[n] = int(i)
            assert len(seen) == 8
            for t in threads:
                t.join()
        finally:
            client.disconnect()


def test_the_sync_client_connects_again_after_disconnect():
    with fake_in_own_loop() as (loop, broker):
        client = PyStrandsClient("127.0.0.1", broker.port, **FAST)
        for attempt in range(2):
            with client:
                assert client.connected
                client.send_private_message("c1", f"round {attempt}")
                link = loop.run_until_complete(broker.link())
                assert json.loads(loop.run_until_complete(link.line()))["params"] == {"conn_id": "c1", "message": f"round {attempt}"}
            assert not client.connected
            assert loop.run_until_complete(link.eof()) == b""


def test_the_sync_client_runs_plain_handlers_and_answers_requests():
    replies = []

    class Echo(PyStrandsClient):
        def on_connection_request(self, request):
            request.context.metadata = {"agent": request.headers.get("User-Agent", [""])[0]}
            return True

        def on_message(self, message, context):
            replies.append(threading.current_thread().name)
            self.send_private_message(context.client_id, message)
            if message == "stop":
                self.disconnect(timeout=30)  # from a handler: returns without waiting for itself

    with fake_in_own_loop() as (loop, broker):
        client = Echo("127.0.0.1", broker.port, **FAST)
        runner = threading.Thread(target=client.run_forever)
        runner.start()
        try:
            link = loop.run_until_complete(broker.link())
            loop.run_until_complete(link.event("connection_request", {"headers": {"User-Agent": ["ua/1"]}, "url": "/x", "remote_addr": "", "query": ""}, request_id="q"))
            answer = json.loads(loop.run_until_complete(link.line()))
            assert answer["params"]["metadata"] == {"agent": "ua/1"} and answer["params"]["accepted"] is True
            loop.run_until_complete(link.event("new_message", {"message": "ping", "context": CONTEXT}))
            assert json.loads(loop.run_until_complete(link.line()))["params"] == {"conn_id": "c1", "message": "ping"}
            loop.run_until_complete(link.event("new_message", {"message": "stop", "context": CONTEXT}))
            runner.join(5)
            assert not runner.is_alive()
            assert all(name.startswith("strands-handler") for name in replies)
        finally:
            client.disconnect()
