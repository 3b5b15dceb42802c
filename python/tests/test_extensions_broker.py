"""The protocol extensions against the real broker. Not in `npm test` until the
broker implements them (the wire format is the one test_fake_broker.py checks)."""

import asyncio

import pytest

from strands_backend import AckResult, RoomInfo
from support import Recorder, attached
from wsclient import Closed, WebSocket


async def connect(broker, client, path):
    """A WebSocket client and its context, as the backend saw it arrive."""
    ws = await WebSocket.connect(broker.ws_port, path)
    (context,) = await client.next("connect")
    return ws, context


async def test_join_and_leave_rooms(broker):
    client = Recorder("127.0.0.1", broker.tcp_port)
    async with attached(broker, client):
        ws, ann = await connect(broker, client, "/ws/home")
        assert await client.join_room(ann.client_id, "extra", ack=True) == AckResult(True, 1)
        assert await client.send_room_message("extra", "in extra", ack=True) == AckResult(True, 1)
        assert await ws.recv() == "in extra"
        assert await client.leave_room(ann.client_id, "extra", ack=True) == AckResult(True, 1)
        assert await client.send_room_message("extra", "gone", ack=True) == AckResult(True, 0)
        await ws.send("still in home")
        _, context = await client.next("message")
        assert context.room_id == "/ws/home"
        await ws.close()


async def test_rooms_per_connection_are_bounded(broker):
    client = Recorder("127.0.0.1", broker.tcp_port)
    async with attached(broker, client):
        ws, ann = await connect(broker, client, "/ws/many")
        results = [await client.join_room(ann.client_id, f"room{i}", ack=True) for i in range(70)]
        first_refusal = next(i for i, result in enumerate(results) if not result.ok)
        assert all(result.ok for result in results[:first_refusal])
        assert all(not result.ok and result.error for result in results[first_refusal:])
        await ws.close()


async def test_exclude_on_room_and_broadcast_sends(broker):
    client = Recorder("127.0.0.1", broker.tcp_port)
    async with attached(broker, client):
        ann_ws, ann = await connect(broker, client, "/ws/ex")
        bob_ws, bob = await connect(broker, client, "/ws/ex")
        assert await client.send_room_message("/ws/ex", "not ann", exclude=ann.client_id, ack=True) == AckResult(True, 1)
        assert await client.broadcast_message("nobody", exclude=[ann.client_id, bob.client_id], ack=True) == AckResult(True, 0)
        assert await bob_ws.recv() == "not ann"
        await client.send_private_message(ann.client_id, "marker")
        assert await ann_ws.recv() == "marker"  # nothing excluded reached ann before it
        await ann_ws.close()
        await bob_ws.close()


async def test_disconnect_a_client_with_code_and_reason(broker):
    client = Recorder("127.0.0.1", broker.tcp_port)
    async with attached(broker, client):
        ws, ann = await connect(broker, client, "/ws/kick")
        assert await client.disconnect_client(ann.client_id, 4001, "bye ✓", ack=True) == AckResult(True, 1)
        with pytest.raises(Closed) as closed:
            await ws.recv()
        assert (closed.value.code, closed.value.reason) == (4001, "bye ✓")
        assert await client.next("disconnect") == (ann,)


async def test_binary_both_ways(broker):
    client = Recorder("127.0.0.1", broker.tcp_port)
    async with attached(broker, client):
        ws, ann = await connect(broker, client, "/ws/bin")
        payload = bytes(range(256)) * 3
        await ws.send(payload)
        assert await client.next("message") == (payload, ann)
        await client.send_private_message(ann.client_id, payload)
        assert await ws.recv() == payload
        await client.send_room_message("/ws/bin", b"\x00")
        assert await ws.recv() == b"\x00"
        await ws.close()


async def test_room_info(broker):
    client = Recorder("127.0.0.1", broker.tcp_port)
    async with attached(broker, client):
        clients = [await connect(broker, client, "/ws/info") for _ in range(3)]
        info = await client.room_info("/ws/info")
        assert info == RoomInfo("/ws/info", 3, sorted(context.client_id for _, context in clients))
        assert await client.room_info("/ws/empty") == RoomInfo("/ws/empty", 0, [])
        await asyncio.gather(*(ws.close() for ws, _ in clients))
