"""The SDK against the real broker (node dist/src/main.js) and real WebSocket clients."""

import asyncio

import pytest

from broker_process import BrokerProcess
from strands_backend import AsyncPyStrandsClient, AuthenticationError, PyStrandsClient
from support import FAST, Recorder, attached, running
from wsclient import UpgradeRefused, WebSocket


class Chat(Recorder):
    """Admits ?token=ok into the room named by ?room=, remembering its user agent."""

    async def on_connection_request(self, request):
        await self.events.put(("request", request.url, request.query, request.header("User-Agent")))
        if request.query_param("token") != "ok":
            return False
        request.context.room_id = request.query_param("room") or "lobby"
        request.context.metadata = {"agent": request.header("User-Agent")}
        return True


async def test_requests_messages_rooms_and_disconnects_through_the_broker(broker):
    client = Chat("127.0.0.1", broker.tcp_port)
    async with attached(broker, client):
        with pytest.raises(UpgradeRefused) as refused:
            await WebSocket.connect(broker.ws_port, "/ws/chat?token=bad")
        assert refused.value.status == 403
        assert await client.next("request") == ("/ws/chat", "token=bad", None)
        ann = await WebSocket.connect(broker.ws_port, "/ws/chat?token=ok&room=r1", headers={"User-Agent": "ann/1"})
        bob = await WebSocket.connect(broker.ws_port, "/ws/chat?token=ok&room=r1")
        (ann_context,) = await client.next("connect")
        assert ann_context.room_id == "r1" and ann_context.metadata == {"agent": "ann/1"}
        (bob_context,) = await client.next("connect")

        await ann.send("héllo € 😀")
        assert await client.next("message") == ("héllo € 😀", ann_context)
        await client.send_room_message("r1", "to the room ✓")
        assert await ann.recv() == "to the room ✓" and await bob.recv() == "to the room ✓"
        await client.send_private_message(bob_context.client_id, "just bob")
        await client.broadcast_message("everyone")
        assert await bob.recv() == "just bob"
        assert await bob.recv() == "everyone" and await ann.recv() == "everyone"

        big = "é" * 300_000  # 600 KB of UTF-8, 1.8 MB as the broker's \\u escapes: many reads per line
        await ann.send(big)
        assert await client.next("message") == (big, ann_context)

        await ann.close()
        assert await client.next("disconnect") == (ann_context,)
        await bob.close()


async def test_the_sync_client_through_the_broker(broker):
    class Echo(PyStrandsClient):
        def on_message(self, message, context):
            self.send_private_message(context.client_id, message.upper())

    client = Echo("127.0.0.1", broker.tcp_port)
    mark = broker.mark()
    with client:
        await asyncio.to_thread(broker.wait_log, "backend connected", mark)
        ws = await WebSocket.connect(broker.ws_port, "/")
        await ws.send("shout")
        assert await ws.recv() == "SHOUT"
        await ws.close()
        mark = broker.mark()
    assert not client.connected
    await asyncio.to_thread(broker.wait_log, "backend disconnected", mark)


@pytest.fixture(scope="module")
def secured(tls_cert):
    """A broker that wants a token, serves its backend port over TLS, and sends no heartbeats."""
    broker = BrokerProcess("--backend-token", "s3cret", "--backend-tls-cert", str(tls_cert / "cert.pem"), "--backend-tls-key", str(tls_cert / "key.pem"), "--heartbeat-interval", "0")
    yield broker
    broker.stop()


async def test_token_and_tls_to_the_backend_port(secured, tls_cert):
    client = Chat("localhost", secured.tcp_port, token="s3cret", cafile=str(tls_cert / "cert.pem"))
    async with attached(secured, client):
        ws = await WebSocket.connect(secured.ws_port, "/?token=ok")  # only a backend that passed auth answers
        (context,) = await client.next("connect")
        assert context.room_id == "lobby"
        await ws.send("secret")
        assert await client.next("message") == ("secret", context)
        await client.send_private_message(context.client_id, "back over tls")
        assert await ws.recv() == "back over tls"
        await ws.close()


async def test_a_wrong_token_stops_the_client(secured, tls_cert):
    wrong = AsyncPyStrandsClient("127.0.0.1", secured.tcp_port, token="guess", cafile=str(tls_cert / "cert.pem"), **FAST)
    with pytest.raises(AuthenticationError, match="invalid token"):
        await asyncio.wait_for(wrong.run_forever(), 30)


async def test_a_broker_that_sends_no_heartbeats_is_dropped_and_rejoined(secured, tls_cert):
    client = AsyncPyStrandsClient("127.0.0.1", secured.tcp_port, token="s3cret", cafile=str(tls_cert / "cert.pem"), heartbeat_timeout=0.3, **FAST)
    mark = secured.mark()
    async with running(client):
        joined = await asyncio.to_thread(secured.wait_index, "backend connected", mark)
        dropped = await asyncio.to_thread(secured.wait_index, "backend disconnected", joined)
        await asyncio.to_thread(secured.wait_index, "backend connected", dropped)


async def test_the_client_rejoins_a_restarted_broker():
    first = BrokerProcess()
    port = first.tcp_port
    client = Chat("127.0.0.1", port, **FAST)
    async with running(client):
        try:
            await asyncio.to_thread(first.wait_log, "backend connected", 0)
        finally:
            await asyncio.to_thread(first.stop)  # off the loop: the client must see the link close
        second = await asyncio.to_thread(BrokerProcess, tcp_port=port)
        try:
            await asyncio.to_thread(second.wait_log, "backend connected", 0)
            ws = await WebSocket.connect(second.ws_port, "/?token=ok&room=back")
            (context,) = await client.next("connect")
            assert context.room_id == "back"
            await ws.send("still here")
            assert await client.next("message") == ("still here", context)
            await ws.close()
        finally:
            await asyncio.to_thread(second.stop)
