/**
 * Delivery across real nats-server processes and broker processes: any id,
 * in order, exactly once; sockets sharing a client id on several nodes;
 * NATS's max_payload; a two-server NATS cluster with routes.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { clusterNode, hears, metric, nodeWithBackendThenPeer } from '../helpers/cluster-nodes';
import { startNats } from '../helpers/nats';
import { RawBackend, type Line } from '../helpers/raw-backend';
import { clientFor } from '../helpers/fixtures';
import { upgradeStatus, type TestClient } from '../helpers/ws-client';

const client = clientFor;

/** Accepts every client with the client_id and room of its query (room: the url when absent). */
const acceptFromQuery = (line: Line): Record<string, unknown> => {
  const query = new URLSearchParams(String(line.params.query));
  return { accepted: true, client_id: query.get('client_id') ?? undefined, room_id: query.get('room') ?? line.params.url };
};

async function backendOn(t: TestContext, port: number): Promise<RawBackend> {
  const backend = await RawBackend.connect(port, { accept: acceptFromQuery });
  t.after(() => backend.kill());
  return backend;
}

// An empty room_id in a response means the url (the compatible default), so '' is tried as part of client ids only.
const STRANGE_IDS = ['a.b.c', 'star*', 'gt>', 'with space', '日本語 ü', '  ', '_x', 'a..b', '\t', '>', '*'];

test('room and client ids holding dots, wildcards, whitespace or non-ASCII reach the right clients on every node', async (t) => {
  const nats = await startNats(t);
  const { b, backend } = await nodeWithBackendThenPeer(t, nats.url, acceptFromQuery);
  const onB: TestClient[] = [];
  for (const [i, id] of STRANGE_IDS.entries()) {
    onB.push(await client(t, `ws://127.0.0.1:${b.wsPort}/x?client_id=${encodeURIComponent(`${i === 0 ? '' : `c${i}`}${id}`)}&room=${encodeURIComponent(id)}`));
    await backend.next('new_connection');
  }
  for (const [i, id] of STRANGE_IDS.entries()) {
    backend.send({ request_id: `r${i}`, action: 'message_to_room', params: { room_id: id, message: `room ${i}` } });
    backend.send({ request_id: `c${i}`, action: 'message_to_connection', params: { conn_id: `${i === 0 ? '' : `c${i}`}${id}`, message: `direct ${i}` } });
  }
  for (const [i, c] of onB.entries()) assert.deepEqual([await c.nextMessage(), await c.nextMessage()], [`room ${i}`, `direct ${i}`]);
});

test('a backend\'s sends reach every node in the order it sent them, each exactly once', async (t) => {
  const nats = await startNats(t);
  const c = await clusterNode(t, nats.url, 'c');
  const backend = await backendOn(t, c.tcpPort);
  const a = await clusterNode(t, nats.url, 'a');
  const b = await clusterNode(t, nats.url, 'b');
  await Promise.all([hears(a, 'c', 1), hears(b, 'c', 1)]);
  const clients = [await client(t, `ws://127.0.0.1:${a.wsPort}/r?client_id=x`), await client(t, `ws://127.0.0.1:${b.wsPort}/r?client_id=y`), await client(t, `ws://127.0.0.1:${c.wsPort}/r?client_id=z`)];
  for (let i = 0; i < 3; i++) await backend.next('new_connection');
  const N = 500;
  const lines = [];
  for (let i = 0; i < N; i++) lines.push(JSON.stringify({ request_id: `m${i}`, action: i % 2 === 0 ? 'message_to_room' : 'broadcast', params: { room_id: '/r', message: `m${i}` } }) + '\n');
  backend.sendRaw(lines.join(''));
  backend.send({ request_id: 'end', action: 'broadcast', params: { message: 'end' } });
  for (const cl of clients) {
    const got: string[] = [];
    for (let m = await cl.nextMessage(); m !== 'end'; m = await cl.nextMessage()) got.push(m);
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => `m${i}`));
  }
  assert.equal(await metric(c, 'strands_cluster_bus_messages_total', 'direction="dropped"'), 0);
});

test('sockets sharing a client_id on different nodes all get its message_to_connection', async (t) => {
  const nats = await startNats(t);
  const { a, b, backend } = await nodeWithBackendThenPeer(t, nats.url, acceptFromQuery);
  const tabs = [await client(t, `ws://127.0.0.1:${a.wsPort}/r?client_id=same`), await client(t, `ws://127.0.0.1:${b.wsPort}/r?client_id=same`), await client(t, `ws://127.0.0.1:${b.wsPort}/r?client_id=same`)];
  for (let i = 0; i < 3; i++) await backend.next('new_connection');
  backend.send({ request_id: 'd', action: 'message_to_connection', params: { conn_id: 'same', message: 'to every tab' } });
  for (const tab of tabs) assert.equal(await tab.nextMessage(), 'to every tab');
});

test('no backend anywhere: an upgrade on any node gets 503 at once', async (t) => {
  const nats = await startNats(t);
  const a = await clusterNode(t, nats.url, 'a');
  const b = await clusterNode(t, nats.url, 'b');
  await hears(a, 'b', 0);
  const started = Date.now();
  assert.equal(await upgradeStatus(`ws://127.0.0.1:${a.wsPort}/x`), 503);
  assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
  assert.equal(b.child.exitCode, null);
});

test('a message over the NATS server\'s max_payload is refused with an error event and a counter; smaller ones pass', async (t) => {
  const nats = await startNats(t, { maxPayload: 64 * 1024 });
  const { a, b, backend } = await nodeWithBackendThenPeer(t, nats.url, acceptFromQuery);
  const far = await client(t, `ws://127.0.0.1:${b.wsPort}/r?client_id=far`);
  await backend.next('new_connection');
  backend.send({ request_id: 'big', action: 'message_to_room', params: { room_id: '/r', message: 'x'.repeat(100 * 1024) } });
  const error = await backend.next('error');
  assert.match(String(error.params.error), /too large for the cluster bus \(its max_payload is 65536\)/);
  assert.equal(await metric(a, 'strands_cluster_bus_too_big_total'), 1);
  backend.send({ request_id: 'ok', action: 'message_to_room', params: { room_id: '/r', message: 'y'.repeat(32 * 1024) } });
  assert.equal((await far.nextMessage()).length, 32 * 1024);
});

test('on a two-server NATS cluster with routes: a client on node A (NATS 1) and the backend on node B (NATS 2)', async (t) => {
  const nats1 = await startNats(t, { cluster: { routes: [] } });
  const nats2 = await startNats(t, { cluster: { routes: [`nats://127.0.0.1:${nats1.routePort}`] } });
  const b = await clusterNode(t, nats2.url, 'b');
  const backend = await backendOn(t, b.tcpPort);
  const a = await clusterNode(t, nats1.url, 'a');
  // Interest propagates between routed servers asynchronously: wait for the effect (the directory hears b), never a fixed time.
  await hears(a, 'b', 1);
  const x = await client(t, `ws://127.0.0.1:${a.wsPort}/chat?client_id=x`);
  await backend.next('new_connection');
  x.ws.send('over the route');
  assert.equal((await backend.next('new_message')).params.message, 'over the route');
  for (let round = 0; ; round++) {
    // The room subject's interest may still be on its way from NATS 1 to NATS 2: resend until it arrives.
    backend.send({ request_id: `back${round}`, action: 'message_to_room', params: { room_id: '/chat', message: 'and back' } });
    const got = await x.messages.next((m) => m === 'and back', 500, 'the room message').catch(() => undefined);
    if (got !== undefined) break;
    assert.ok(round < 20, 'the room message never crossed the route');
  }
});
