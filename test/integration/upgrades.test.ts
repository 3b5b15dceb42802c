/**
 * Upgrades waiting for a backend: bounded, released the moment their client
 * leaves (and then never sent to another backend), never a reason to drop a
 * backend, and refused with 502 when the backend accepts with values the
 * broker cannot keep.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { metric } from '../helpers/cluster-nodes';
import { backendFor, brokerFor, clientFor, joinedClient, takeAll, takeOne, tolerateReset, waitUntil } from '../helpers/fixtures';
import { portOf, spawnBroker } from '../helpers/spawn-broker';
import { openClient, upgradeStatus, type TestClient } from '../helpers/ws-client';

const KiB = 1024;

/** Starts an upgrade and returns its socket; errors (it is cut while connecting) are ignored. */
function startUpgrade(url: string): WebSocket {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined);
  return ws;
}

/** Writes an upgrade request by hand and closes the connection as soon as the broker has it. */
async function abandonedUpgrade(port: number): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`GET /gone HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  socket.destroy();
}

test('a client that leaves mid-upgrade releases its slot and its waiting place at once, so the next client gets in under --max-connections 1; its backend\'s late answer opens nothing, takes no slot and is counted', async (t) => {
  const broker = await brokerFor(t, { maxConnections: 1 });
  const backend = await backendFor(t, broker.tcpPort);
  const quitter = startUpgrade(broker.url('/room?client_id=quitter'));
  const first = await backend.next('connection_request');
  assert.equal(broker.broker.stats.connections.waiting, 1);
  assert.equal(broker.broker.stats.connections.slots, 1);
  quitter.terminate();
  await waitUntil(() => broker.broker.stats.connections.waiting === 0 && broker.broker.stats.connections.slots === 0, 'the abandoned upgrade released everything');
  assert.equal(broker.broker.stats.connections.abandoned, 1);

  const opening = clientFor(t, broker.url('/room?client_id=second'));
  opening.catch(() => undefined);
  const second = await backend.next('connection_request');
  assert.notEqual(second.request_id, first.request_id);
  backend.answer(second, { accepted: true, client_id: 'second', room_id: '/room' });
  const client = await opening;
  assert.equal((await backend.next('new_connection')).params.context.client_id, 'second');
  assert.equal(broker.broker.stats.connections.refused[503], 0);

  // A late answer to the abandoned request opens nothing and takes no slot.
  backend.answer(first, { accepted: true, client_id: 'quitter', room_id: '/room' });
  await waitUntil(() => broker.broker.stats.connections.lateResponses === 1, 'the late answer is counted');
  client.ws.send('still here');
  assert.equal((await backend.next('new_message')).params.message, 'still here');
  assert.equal(broker.broker.stats.connections.slots, 1, 'the late answer took a slot');
  assert.equal(broker.broker.stats.connections.open, 1, 'the late answer opened a connection');
  assert.equal(broker.broker.stats.errors.unknown_request, 0, 'the backend is not told off for answering late');
});

test('a request whose client left is not sent again to another backend when the backend holding it dies', async (t) => {
  const broker = await brokerFor(t, { maxConnections: 1 });
  const x = await backendFor(t, broker.tcpPort);
  const y = await backendFor(t, broker.tcpPort);
  tolerateReset(x);
  tolerateReset(y);
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');
  const quitter = startUpgrade(broker.url('/room?client_id=quitter'));
  const [request, holder] = await takeOne([x, y], (l) => l.action === 'connection_request');
  const other = holder === x ? y : x;
  quitter.terminate();
  await waitUntil(() => broker.broker.stats.connections.slots === 0, 'the abandoned upgrade gave its slot back');

  holder.kill();
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the holder left the pool');
  // A request sent again would have gone out when the holder's close was handled, before this one.
  const opening = clientFor(t, broker.url('/room?client_id=next'));
  opening.catch(() => undefined);
  const next = await other.next('connection_request');
  assert.notEqual(next.request_id, request.request_id, 'the abandoned request was sent again to the other backend');
  other.answer(next, { accepted: true, client_id: 'next', room_id: '/room' });
  await opening;
  await other.next('new_connection');
  const stray = takeAll(other).filter((l) => l.request_id === request.request_id || (l.action === 'connection_request' && l.params.query === 'client_id=quitter'));
  assert.deepEqual(stray, []);
  assert.equal(broker.broker.stats.errors.no_backend, 0);
});

test('thousands of abandoned upgrades hold nothing once gone, with --max-connections 50', async (t) => {
  const broker = await brokerFor(t, { maxConnections: 50 });
  const backend = await backendFor(t, broker.tcpPort);
  tolerateReset(backend);
  for (let i = 0; i < 3000; i++) await abandonedUpgrade(broker.wsPort);
  await waitUntil(() => broker.broker.stats.connections.abandoned + broker.broker.stats.connections.refused[503] >= 3000, 'every upgrade was seen and ended', 20_000);
  await waitUntil(() => broker.broker.stats.connections.waiting === 0 && broker.broker.stats.connections.slots === 0, 'nothing is held', 10_000);
  assert.equal(broker.broker.stats.backends.connected, 1, 'the backend that got the requests is still there');
  // Slots were given back as clients left: a real client still gets through.
  const status = upgradeStatus(broker.url('/after'));
  const request = await backend.next('connection_request', 5000, (l) => l.params.url === '/after');
  backend.answer(request, { accepted: false });
  assert.equal(await status, 403);
});

/** `{"a":{"a":...}}`, `levels` objects deep counting the outermost. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

test('an accepting response with values the broker cannot keep: HTTP 502 to the client, an error naming the param to the backend', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ client_id: 7 }, /^response: params\.client_id must be a string, got 7 \(request_id [0-9a-f-]{36}\)$/],
    [{ room_id: 'r'.repeat(1025) }, /^response: params\.room_id is longer than 1024 characters /],
    [{ metadata: [1] }, /^response: params\.metadata must be an object, got an array /],
    [{ metadata: nested(33) }, /^response: params\.metadata nests deeper than 32 levels /],
    [{ metadata: { big: 'x'.repeat(64 * KiB) } }, /^response: the client's context is \d+ bytes, over 65536 /],
  ];
  for (const [params, error] of refused) {
    const status = upgradeStatus(broker.url('/bad'));
    backend.answer(await backend.next('connection_request'), { accepted: true, ...params });
    assert.equal(await status, 502);
    assert.match(String((await backend.next('error')).params.error), error);
  }
  assert.equal(broker.broker.stats.connections.refused[502], refused.length);
  assert.equal(broker.broker.stats.errors.invalid_params, refused.length);
  // At the limits themselves the client is accepted.
  const opening = clientFor(t, broker.url('/edge'));
  backend.answer(await backend.next('connection_request'), { accepted: true, client_id: 'c'.repeat(1024), metadata: nested(32) });
  const opened = await backend.next('new_connection');
  assert.equal(opened.params.context.client_id, 'c'.repeat(1024));
  assert.equal((await opening).ws.readyState, WebSocket.OPEN);
});

test('upgrades waiting at once beyond --max-pending-upgrades get 503 at once', async (t) => {
  const broker = await brokerFor(t, { maxPendingUpgrades: 3 });
  const backend = await backendFor(t, broker.tcpPort);
  const waiting = [0, 1, 2].map((i) => startUpgrade(broker.url(`/w${i}`)));
  t.after(() => waiting.forEach((ws) => ws.terminate()));
  for (let i = 0; i < 3; i++) await backend.next('connection_request');
  assert.equal(await upgradeStatus(broker.url('/fourth')), 503);
  assert.equal(broker.broker.stats.connections.waiting, 3);
});

test('connection requests never make the broker drop a backend that reads slowly: over its mark, upgrades get 503 instead', async (t) => {
  const broker = await brokerFor(t, { backendHwm: 16 * KiB, heartbeatInterval: 0, maxPayload: 1024 * KiB });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  tolerateReset(backend);
  const { client } = await joinedClient(t, broker, backend, 'talker');
  backend.socket.pause();
  // The client's messages fill the kernel's buffers, then the link's: the backend is over its mark.
  const body = 't'.repeat(512 * KiB);
  for (let i = 0; i < 200 && !broker.broker.stats.backends.links.every((l) => l.aboveHighWaterMark); i++) {
    const sent = broker.broker.stats.messagesOut.new_message;
    client.ws.send(body);
    await waitUntil(() => broker.broker.stats.messagesOut.new_message > sent, 'the message was handled');
  }
  assert.ok(broker.broker.stats.backends.links.every((l) => l.aboveHighWaterMark), 'the backend never went over its mark');
  const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => upgradeStatus(broker.url(`/late${i}`))));
  assert.deepEqual(new Set(statuses), new Set([503]));
  assert.equal(broker.broker.stats.errors.backends_busy, 20, 'each is counted as backends_busy');
  assert.equal(broker.broker.stats.backends.connected, 1, 'the slow backend was dropped');
  assert.equal(broker.broker.stats.backends.dropped, 0);
  // Once it reads again, it gets requests again.
  backend.socket.resume();
  await waitUntil(() => broker.broker.stats.backends.links.every((l) => !l.aboveHighWaterMark), 'the backend caught up', 10_000);
  const { client: after } = await joinedClient(t, broker, backend, 'after');
  assert.equal(after.ws.readyState, after.ws.OPEN);
});

test('a socket uWS closes in the same step that completes its upgrade (under node --cpu-prof, the first one): the backend hears it came and left, nothing of it stays, and it is counted', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strands-cpu-prof-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const broker = await spawnBroker(t, ['--metrics-port', '0', '--log-level', 'info'], {}, ['sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${dir} "$@"`]);
  const metrics = { metricsPort: portOf(broker.listening.metrics) };
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const ids = ['a', 'b', 'c'];
  const clients: TestClient[] = [];
  for (const id of ids) {
    const client = await openClient(`ws://127.0.0.1:${broker.wsPort}/r?client_id=${id}`);
    t.after(() => client.ws.terminate());
    clients.push(client);
    assert.equal((await backend.next('new_connection')).params.context.client_id, id);
  }
  // The broker counts such a socket, and tells the backend, before it sends the new_connection of the next client.
  const closedInUpgrade = await metric(metrics, 'strands_connections_closed_in_upgrade_total');
  assert.ok(closedInUpgrade >= 1, 'no socket was closed in its upgrade: this test no longer reaches that path');
  for (let i = 0; i < closedInUpgrade; i++) {
    const id = String((await backend.next('disconnected')).params.context.client_id);
    assert.equal((await clients[ids.indexOf(id)]!.closed).code, 1006, `${id} saw its connection cut`);
  }
  assert.equal(await metric(metrics, 'strands_connections_open'), ids.length - closedInUpgrade);
  for (const client of clients) await client.close();
  for (let i = closedInUpgrade; i < ids.length; i++) await backend.next('disconnected');
  assert.equal(await metric(metrics, 'strands_connections_open'), 0);
  assert.equal(await metric(metrics, 'strands_connections_opened_total'), ids.length);
  const defects = broker.stdout.pending.filter((l) => String(l.msg).startsWith('internal error'));
  assert.deepEqual(defects, [], 'the broker met a closed socket where it expected an open one');
});
