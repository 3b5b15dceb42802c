/**
 * The cluster's semantics on brokers in this process joined by an in-memory
 * bus with NATS's rules (test/helpers/memory-bus.ts): fast and exact. The
 * same behaviours run against real nats-server processes in test/cluster/.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { BusRequestError, type Transport } from '../../src/cluster/transport';
import type { TestBroker } from '../helpers/broker';
import { backendFor, brokerFor, clientFor, waitUntil } from '../helpers/fixtures';
import { MemoryBus } from '../helpers/memory-bus';
import type { RawBackend } from '../helpers/raw-backend';
import { upgradeStatus, type TestClient } from '../helpers/ws-client';

const HEARTBEAT = 50;

async function node(t: TestContext, bus: MemoryBus, id: string, overrides = {}): Promise<TestBroker> {
  return brokerFor(t, { cluster: ['nats://in-memory'], nodeId: id, clusterHeartbeat: HEARTBEAT, ...overrides }, { bus: (nodeId) => bus.transport(nodeId) });
}

/** Waits until `broker`'s directory knows `count` nodes with backends (itself included). */
async function knows(broker: TestBroker, count: number): Promise<void> {
  await waitUntil(() => (broker.broker.stats.cluster?.nodes ?? []).filter((n) => n.backends > 0).length === count, `the directory knows ${count} nodes with backends`);
}

/** Nodes a and b on `bus`, a raw backend on a, once b's directory knows it: where most of these tests start. */
async function nodeWithBackendThenPeer(t: TestContext, bus = new MemoryBus()): Promise<{ a: TestBroker; b: TestBroker; backend: RawBackend }> {
  const a = await node(t, bus, 'a');
  const b = await node(t, bus, 'b');
  const backend = await backendFor(t, a.tcpPort, { accept: true });
  await knows(b, 1);
  return { a, b, backend };
}

async function join(t: TestContext, broker: TestBroker, backend: RawBackend, clientId: string, room = '/room'): Promise<TestClient> {
  const client = await clientFor(t, broker.url(`${room}?client_id=${encodeURIComponent(clientId)}`));
  await backend.next('new_connection', 5000, (l) => l.params.context.client_id === clientId);
  return client;
}

test('one node makes no bus call at all: a bus whose every method throws is never touched', async (t) => {
  const throwing = new Proxy({} as Transport & { start(): Promise<void> }, {
    get: () => () => {
      throw new Error('the bus was called on one node');
    },
  });
  let made = 0;
  const broker = await brokerFor(t, {}, { bus: () => (made++, throwing) });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const client = await join(t, broker, backend, 'solo');
  client.ws.send('hi');
  await backend.next('new_message');
  for (const action of ['message_to_room', 'broadcast', 'message_to_connection', 'join_room', 'leave_room'] as const) {
    backend.send({ request_id: action, action, params: { room_id: action.endsWith('_room') && action !== 'message_to_room' ? '/other' : '/room', conn_id: 'solo', message: action } });
  }
  backend.send({ request_id: 'info', action: 'room_info', params: { room_id: '/room' } });
  const info = await backend.next('response');
  assert.equal(info.params.count, 1);
  assert.deepEqual([await client.nextMessage(), await client.nextMessage(), await client.nextMessage()], ['message_to_room', 'broadcast', 'message_to_connection']);
  assert.equal(made, 0);
  assert.equal(broker.broker.stats.cluster, undefined);
});

test('sends reach every node\'s clients exactly once, in the order the backend sent them; exclude holds on every node', async (t) => {
  const { a, b, backend } = await nodeWithBackendThenPeer(t);
  const x = await join(t, a, backend, 'x');
  const y = await join(t, b, backend, 'y');
  const z = await join(t, b, backend, 'z');
  for (let i = 0; i < 50; i++) backend.send({ request_id: `m${i}`, action: 'message_to_room', params: { room_id: '/room', message: `m${i}` } });
  backend.send({ request_id: 'ex', action: 'broadcast', params: { message: 'not for y', exclude: ['y'] } });
  backend.send({ request_id: 'ex2', action: 'message_to_room', params: { room_id: '/room', message: 'not for x', exclude: 'x' } });
  backend.send({ request_id: 'end', action: 'broadcast', params: { message: 'end' } });
  const expected = Array.from({ length: 50 }, (_, i) => `m${i}`);
  const take = async (c: TestClient, n: number): Promise<string[]> => {
    const got: string[] = [];
    for (let i = 0; i < n; i++) got.push(await c.nextMessage());
    return got;
  };
  assert.deepEqual(await take(x, 52), [...expected, 'not for y', 'end']);
  assert.deepEqual(await take(y, 52), [...expected, 'not for x', 'end']);
  assert.deepEqual(await take(z, 53), [...expected, 'not for y', 'not for x', 'end']);
});

test('join_room, leave_room and disconnect act on the client\'s sockets on every node; room_info counts the whole cluster', async (t) => {
  const { a, b, backend } = await nodeWithBackendThenPeer(t);
  const onA = await join(t, a, backend, 'multi', '/lobby');
  const onB = await join(t, b, backend, 'multi', '/lobby');
  const other = await join(t, b, backend, 'other', '/lobby');

  backend.send({ request_id: 'j', action: 'join_room', params: { conn_id: 'multi', room_id: 'vip' }, ack: true });
  const joined = await backend.next('response', 5000, (l) => l.request_id === 'j');
  assert.deepEqual(joined.params, { ok: true, delivered: 1 }, 'the ack counts the sockets of the answering node');
  await waitUntil(() => b.broker.stats.rooms === 2, 'node b has the socket in vip too');
  backend.send({ request_id: 'v', action: 'message_to_room', params: { room_id: 'vip', message: 'vip only' } });
  assert.equal(await onA.nextMessage(), 'vip only');
  assert.equal(await onB.nextMessage(), 'vip only');

  backend.send({ request_id: 'info', action: 'room_info', params: { room_id: '/lobby' } });
  const info = await backend.next('response', 5000, (l) => l.request_id === 'info');
  assert.deepEqual(info.params, { room_id: '/lobby', count: 2, client_ids: ['multi', 'other'], nodes: 2, nodes_total: 2 });

  backend.send({ request_id: 'l', action: 'leave_room', params: { conn_id: 'multi', room_id: 'vip' } });
  await waitUntil(() => a.broker.stats.rooms === 1 && b.broker.stats.rooms === 1, 'vip is left on both nodes');

  backend.send({ request_id: 'd', action: 'disconnect', params: { conn_id: 'multi', code: 4001, reason: 'bye' } });
  assert.deepEqual(await onA.closed, { code: 4001, reason: 'bye' });
  assert.deepEqual(await onB.closed, { code: 4001, reason: 'bye' });
  assert.equal(other.ws.readyState, other.ws.OPEN);
});

test('a node subscribes to a room only while it has a member there (after a linger), and to a client id only while it holds a socket', async (t) => {
  const bus = new MemoryBus();
  const a = await node(t, bus, 'a');
  const backend = await backendFor(t, a.tcpPort, { accept: true });
  const base = a.broker.stats.cluster?.subscriptions;
  assert.equal(base, 0);
  const client = await join(t, a, backend, 'c1', '/r1');
  assert.equal(a.broker.stats.cluster?.subscriptions, 2, 'one for the room, one for the client id');
  await client.close();
  await backend.next('disconnected');
  assert.equal(a.broker.stats.cluster?.subscriptions, 2, 'kept for a linger against churn');
  await waitUntil(() => a.broker.stats.cluster?.subscriptions === 0, 'released after the linger', 10_000);
});

test('with no backend anywhere, upgrades get 503 at once; events wait in each node\'s queue and go, in order, as soon as a backend appears anywhere', async (t) => {
  const { a, b, backend: first } = await nodeWithBackendThenPeer(t);
  const client = await join(t, b, first, 'waiter');
  first.kill();
  await knows(b, 0);
  const status = await upgradeStatus(b.url('/x'));
  assert.equal(status, 503);
  for (let i = 0; i < 5; i++) client.ws.send(`q${i}`);
  await waitUntil(() => b.broker.stats.queue.depth === 5, 'node b queues its client\'s events');
  const second = await backendFor(t, a.tcpPort, { accept: true });
  for (let i = 0; i < 5; i++) assert.equal((await second.next('new_message')).params.message, `q${i}`);
  assert.equal(b.broker.stats.queue.depth, 0);
});

test('--balance client keeps each client\'s events on one node\'s backends, cluster-wide', async (t) => {
  const bus = new MemoryBus();
  const a = await node(t, bus, 'a', { balance: 'client' });
  const b = await node(t, bus, 'b', { balance: 'client' });
  const onA = await backendFor(t, a.tcpPort, { accept: true });
  const onB = await backendFor(t, b.tcpPort, { accept: true });
  await knows(a, 2);
  await knows(b, 2);
  const owners = new Map<string, RawBackend>();
  for (let i = 0; i < 12; i++) {
    const id = `k${i}`;
    const entry = i % 2 === 0 ? a : b;
    const client = await clientFor(t, entry.url(`/r?client_id=${id}`));
    for (let m = 0; m < 3; m++) client.ws.send(`${id}:${m}`);
    // Whichever backend got the first message must get all three.
    const [line, owner] = await Promise.race([onA, onB].map((be) => be.next('new_message', 5000, (l) => l.params.context.client_id === id).then((l) => [l, be] as const)));
    assert.equal(line.params.message, `${id}:0`);
    owners.set(id, owner);
    for (let m = 1; m < 3; m++) assert.equal((await owner.next('new_message', 5000, (l) => l.params.context.client_id === id)).params.message, `${id}:${m}`);
  }
  const counts = [onA, onB].map((be) => [...owners.values()].filter((o) => o === be).length);
  assert.ok(counts.every((n) => n > 0), `both nodes own some clients: ${counts.join(' / ')}`);
});

test('a message larger than the bus takes is refused with an error event and delivered nowhere', async (t) => {
  const bus = new MemoryBus(4096);
  const a = await node(t, bus, 'a');
  const backend = await backendFor(t, a.tcpPort, { accept: true });
  const client = await join(t, a, backend, 'big');
  backend.send({ request_id: 'big', action: 'message_to_room', params: { room_id: '/room', message: 'b'.repeat(5000) } });
  const error = await backend.next('error');
  assert.match(String(error.params.error), /too large for the cluster bus \(its max_payload is 4096\)/);
  backend.send({ request_id: 'small', action: 'message_to_room', params: { room_id: '/room', message: 'small' } });
  assert.equal(await client.nextMessage(), 'small');
  assert.equal(a.broker.stats.cluster?.bus.tooBig, 1);
});

test('a client event only another node\'s backend could take, over the bus\'s max_payload, is dropped and counted, and the events after it go on', async (t) => {
  const { b, backend } = await nodeWithBackendThenPeer(t, new MemoryBus(4096));
  const far = await join(t, b, backend, 'far');
  far.ws.send('x'.repeat(5000));
  far.ws.send('small after it');
  assert.equal((await backend.next('new_message')).params.message, 'small after it');
  assert.equal(b.broker.stats.cluster?.peers.eventsTooBig, 1);
  assert.equal(b.broker.stats.queue.depth, 0);
});

test('when the bus goes down each node serves its own clients, counts what it could not send, and says it is not ready; back up, it all flows again', async (t) => {
  const bus = new MemoryBus();
  const transports = new Map<string, ReturnType<MemoryBus['transport']>>();
  const make = (id: string) => brokerFor(t, { cluster: ['nats://in-memory'], nodeId: id, clusterHeartbeat: HEARTBEAT }, { bus: (nodeId) => transports.set(nodeId, bus.transport(nodeId)).get(nodeId) as ReturnType<MemoryBus['transport']> });
  const a = await make('a');
  const b = await make('b');
  const backend = await backendFor(t, a.tcpPort, { accept: true });
  await knows(b, 1);
  const x = await join(t, a, backend, 'x');
  const y = await join(t, b, backend, 'y');
  transports.get('a')?.setConnected(false);
  assert.equal(a.broker.stats.ready, false);
  backend.send({ request_id: 'down', action: 'message_to_room', params: { room_id: '/room', message: 'while down' } });
  assert.equal(await x.nextMessage(), 'while down', 'local clients are served');
  await waitUntil(() => (a.broker.stats.cluster?.bus.dropped ?? 0) >= 1, 'the lost send is counted');
  transports.get('a')?.setConnected(true);
  assert.equal(a.broker.stats.ready, true);
  backend.send({ request_id: 'up', action: 'message_to_room', params: { room_id: '/room', message: 'back up' } });
  assert.equal(await x.nextMessage(), 'back up');
  assert.equal(await y.nextMessage(), 'back up', 'node b gets only what was sent while the bus was up');
  await assert.rejects(transports.get('b')?.request('nothing.here', new Uint8Array(), 100) ?? Promise.resolve(), (err) => err instanceof BusRequestError && err.reason === 'no_responders');
});

test('one node never loads the NATS client', async () => {
  const broker = require.resolve('../../src/broker');
  const script = `
    const { Broker } = require(${JSON.stringify(broker)});
    const { defaultConfig } = require(${JSON.stringify(require.resolve('../../src/config'))});
    const { createLogger } = require(${JSON.stringify(require.resolve('../../src/logger'))});
    const b = new Broker({ ...defaultConfig(), host: '127.0.0.1', wsPort: 0, tcpPort: 0 }, createLogger('silent'));
    b.start().then(async () => {
      process.stdout.write(String(Object.keys(require.cache).filter((f) => f.includes('@nats-io')).length));
      await b.stop();
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await once(child, 'close');
  assert.equal(out, '0');
});

test('an upgrade decided by another node\'s backend is counted once, as refused on the node the client is on', async (t) => {
  const bus = new MemoryBus();
  const a = await node(t, bus, 'a');
  const b = await node(t, bus, 'b');
  await backendFor(t, a.tcpPort, { accept: () => ({ accepted: false }) });
  await knows(b, 1);
  assert.equal(await upgradeStatus(b.url('/x')), 403);
  assert.equal(b.broker.stats.connections.refused[403], 1);
  assert.equal(a.broker.stats.connections.refused[403], 0, 'the serving node counted a refusal of a client it never had');
});
