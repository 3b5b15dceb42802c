import assert from 'node:assert/strict';
import { once, type EventEmitter } from 'node:events';
import { test } from 'node:test';
import net = require('node:net');
import {
  StrandsBackend,
  startEchoBackend,
  type ClientContext,
  type ConnectionRequest,
} from '../../src/sdk';
import { AsyncQueue } from '../helpers/async-queue';
import { FakeBroker, connectedBackend } from '../helpers/sdk-fake-broker';

const T = { timeout: 10_000 };

/** Resolves with the arguments of the next `n` emissions of `event`. */
function collect(emitter: EventEmitter, event: string, n: number): Promise<unknown[][]> {
  const seen: unknown[][] = [];
  return new Promise((resolve) => {
    const listener = (...args: unknown[]) => {
      seen.push(args);
      if (seen.length === n) {
        emitter.off(event, listener);
        resolve(seen);
      }
    };
    emitter.on(event, listener);
  });
}

const ctx: ClientContext = { client_id: 'c1', room_id: '/ws/chat', metadata: { role: 'admin' } };

function connectionRequest(requestId: string, params: Record<string, unknown> = {}) {
  return { request_id: requestId, action: 'connection_request', params: { headers: {}, url: '/ws', remote_addr: '127.0.0.1:1', query: '', ...params } };
}

test('answers a connection_request with the handler decision', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  let seen: ConnectionRequest | undefined;
  backend.onConnectionRequest((req) => {
    seen = req;
    return { accepted: true, client_id: 'u1', room_id: 'lobby', metadata: { role: 'admin' } };
  });
  const headers = { Authorization: ['Bearer a', 'Bearer b'], 'Sec-Websocket-Key': ['k'] };
  peer.send({
    request_id: '0b1c-uuid',
    action: 'connection_request',
    params: { headers, url: '/ws/chat', remote_addr: '10.0.0.1:5000', query: 'token=t%201&x=2' },
  });
  assert.deepEqual(await peer.next(), {
    request_id: '0b1c-uuid',
    action: 'response',
    params: { accepted: true, client_id: 'u1', room_id: 'lobby', metadata: { role: 'admin' } },
  });
  assert.ok(seen);
  assert.equal(seen.requestId, '0b1c-uuid');
  assert.deepEqual(seen.headers, headers);
  assert.equal(seen.url, '/ws/chat');
  assert.equal(seen.remoteAddr, '10.0.0.1:5000');
  assert.equal(seen.query, 'token=t%201&x=2');
  assert.equal(seen.header('authorization'), 'Bearer a');
  assert.equal(seen.header('SEC-WEBSOCKET-KEY'), 'k');
  assert.equal(seen.header('Cookie'), undefined);
  assert.equal(seen.queryParam('token'), 't 1');
  assert.equal(seen.queryParam('missing'), undefined);
});

test('default handler accepts with no fields; async handlers and a missing query work', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  peer.send(connectionRequest('r1'));
  assert.deepEqual((await peer.next()).params, { accepted: true });

  let query: string | undefined;
  backend.onConnectionRequest(async (req) => {
    query = req.query;
    return { accepted: false };
  });
  peer.send({ request_id: 'r2', action: 'connection_request', params: { headers: {}, url: '/ws', remote_addr: '1.2.3.4:5' } });
  assert.deepEqual(await peer.next(), { request_id: 'r2', action: 'response', params: { accepted: false } });
  assert.equal(query, '');
});

test('a handler that throws or rejects answers {"accepted": false} only', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const failures = collect(backend, 'handler-error', 2);
  backend.onConnectionRequest(() => {
    throw new Error('boom');
  });
  peer.send(connectionRequest('r1'));
  assert.deepEqual(await peer.next(), { request_id: 'r1', action: 'response', params: { accepted: false } });

  backend.onConnectionRequest(() => Promise.reject(new Error('later boom')));
  peer.send(connectionRequest('r2'));
  assert.deepEqual(await peer.next(), { request_id: 'r2', action: 'response', params: { accepted: false } });
  const errors = (await failures).map(([err, action]) => [(err as Error).message, action]);
  assert.deepEqual(errors, [
    ['boom', 'connection_request'],
    ['later boom', 'connection_request'],
  ]);
});

test('event handlers get the parsed context', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const calls = new AsyncQueue<unknown[]>();
  backend
    .onNewConnection((c) => calls.push(['new_connection', c]))
    .onMessage((m, c) => calls.push(['new_message', m, c]))
    .onDisconnect((c) => calls.push(['disconnected', c]))
    .onError((e, c) => calls.push(['error', e, c]));
  peer.send({ request_id: '1', action: 'new_connection', params: { context: ctx } });
  peer.send({ request_id: '2', action: 'new_message', params: { message: 'hello', context: ctx } });
  peer.send({ request_id: '3', action: 'disconnected', params: { context: ctx } });
  peer.send({ request_id: '4', action: 'error', params: { error: 'auth timeout', context: ctx } });
  peer.send({ request_id: '5', action: 'error', params: { error: 'bad line', context: {} } });
  assert.deepEqual(await calls.next(), ['new_connection', ctx]);
  assert.deepEqual(await calls.next(), ['new_message', 'hello', ctx]);
  assert.deepEqual(await calls.next(), ['disconnected', ctx]);
  assert.deepEqual(await calls.next(), ['error', 'auth timeout', ctx]);
  assert.deepEqual(await calls.next(), ['error', 'bad line', {}]);
});

test('the three send methods write exactly the protocol lines, batched in one write', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const writes = t.mock.method(net.Socket.prototype, 'write');
  backend.sendToRoom('lobby', 'hi "there"\n');
  backend.sendToConnection('u1', 'é');
  backend.broadcast('{"json":1}');
  const lines = [await peer.lines.next(), await peer.lines.next(), await peer.lines.next()];
  const ids = lines.map((line) => JSON.parse(line).request_id as unknown);
  for (const id of ids) assert.equal(typeof id, 'string');
  assert.equal(new Set(ids).size, 3);
  assert.deepEqual(lines, [
    '{"request_id":"' + ids[0] + '","action":"message_to_room","params":{"room_id":"lobby","message":"hi \\"there\\"\\n"}}',
    '{"request_id":"' + ids[1] + '","action":"message_to_connection","params":{"conn_id":"u1","message":"é"}}',
    '{"request_id":"' + ids[2] + '","action":"broadcast","params":{"message":"{\\"json\\":1}"}}',
  ]);
  assert.equal(writes.mock.callCount(), 1);
});

test('lines split across writes and many lines in one write are framed', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const messages = new AsyncQueue<string>();
  backend.onMessage((m) => messages.push(m));

  const line = Buffer.from(JSON.stringify({ request_id: '1', action: 'new_message', params: { message: 'héllo 🎉', context: ctx } }) + '\n');
  const emoji = line.indexOf(Buffer.from('🎉'));
  await peer.write(line.subarray(0, 5));
  await peer.write(line.subarray(5, emoji + 2)); // ends inside the emoji's UTF-8 bytes
  await peer.write(line.subarray(emoji + 2));
  assert.equal(await messages.next(), 'héllo 🎉');

  const many = ['a', 'b', 'c']
    .map((m, i) => JSON.stringify({ request_id: `m${i}`, action: 'new_message', params: { message: m, context: ctx } }))
    .join('\n');
  await peer.write(many + '\n\n{"request_id":"heartbeat","action":"heartbeat","params":{}}\r\n' + many.slice(0, 10));
  assert.deepEqual([await messages.next(), await messages.next(), await messages.next()], ['a', 'b', 'c']);
});

test('heartbeats and unknown actions are ignored silently; bad lines become protocol-error', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const protocolErrors: unknown[][] = [];
  backend.on('protocol-error', (...args: unknown[]) => protocolErrors.push(args));
  const messages = new AsyncQueue<string>();
  backend.onMessage((m) => messages.push(m));
  const responses = collect(backend, 'response', 1);

  peer.send({ request_id: 'heartbeat', action: 'heartbeat', params: {} });
  await peer.write('not json\n[1,2]\n');
  peer.send({ request_id: 'x', action: 'some_future_action', params: {} });
  peer.send({ request_id: 'q1', action: 'response', params: { ok: true, delivered: 2 } });
  peer.send({ request_id: 'y', action: 'new_message', params: { message: 'after', context: ctx } });
  assert.equal(await messages.next(), 'after');
  assert.deepEqual(await responses, [['q1', { ok: true, delivered: 2 }]]);
  assert.deepEqual(
    protocolErrors.map(([reason, line]) => [reason, line]),
    [
      ['invalid JSON', 'not json'],
      ['not an envelope', '[1,2]'],
    ],
  );

  // Nothing was written in reply to the heartbeat: the next line is ours.
  backend.broadcast('mine');
  assert.equal((await peer.next()).action, 'broadcast');
});

test('reconnects after a dropped link and flushes what was sent while down', T, async (t) => {
  const { backend, broker, peer } = await connectedBackend(t, { minBackoffMs: 10, maxBackoffMs: 40 });
  const down = collect(backend, 'disconnect', 1);
  const retry = collect(backend, 'reconnecting', 1);
  peer.kill();
  await down;
  assert.equal(backend.connected, false);
  backend.sendToRoom('r', 'sent while down');
  const [[delay, attempt]] = (await retry) as [[number, number]];
  assert.ok(delay >= 0 && delay <= 10, `first retry within the minimum: ${delay}`);
  assert.equal(attempt, 1);
  const p2 = await broker.peers.next();
  assert.deepEqual((await p2.next()).params, { room_id: 'r', message: 'sent while down' });
  assert.equal(backend.connected, true);
});

test('close() stops reconnecting', T, async (t) => {
  const broker = await FakeBroker.start();
  const backend = new StrandsBackend({ port: broker.port, minBackoffMs: 1000, maxBackoffMs: 1000 });
  t.after(() => broker.stop());
  await backend.connect();
  const p1 = await broker.peers.next();

  const connects = t.mock.method(net, 'connect');
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let retry = collect(backend, 'reconnecting', 1);
  p1.kill();
  await retry;
  t.mock.timers.tick(1000);
  assert.equal(connects.mock.callCount(), 1);
  const p2 = await broker.peers.next();

  retry = collect(backend, 'reconnecting', 1);
  p2.kill();
  await retry;
  await backend.close();
  t.mock.timers.tick(10_000);
  assert.equal(connects.mock.callCount(), 1);
  assert.equal(backend.connected, false);
  await assert.rejects(backend.connect(), /closed/);
});

test('close() flushes pending sends and ends the link', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  backend.broadcast('last words');
  const ended = once(peer.socket, 'end');
  await backend.close();
  assert.deepEqual((await peer.next()).params, { message: 'last words' });
  await ended;
  backend.broadcast('too late');
  assert.equal(backend.droppedSends, 1);
});

test('the auth line comes first after each connect when a token is set', T, async (t) => {
  const broker = await FakeBroker.start();
  const backend = new StrandsBackend({ port: broker.port, token: 's3cret', minBackoffMs: 1, maxBackoffMs: 1 });
  t.after(async () => {
    await backend.close();
    await broker.stop();
  });
  backend.sendToConnection('u1', 'queued');
  await backend.connect();
  const p1 = await broker.peers.next();
  const auth = await p1.next();
  assert.equal(typeof auth.request_id, 'string');
  assert.deepEqual({ ...auth, request_id: 0 }, { request_id: 0, action: 'auth', params: { token: 's3cret' } });
  assert.equal((await p1.next()).action, 'message_to_connection');
  p1.kill();
  const p2 = await broker.peers.next();
  assert.deepEqual((await p2.next()).params, { token: 's3cret' });
});

test('sends while disconnected are buffered up to a bound, the rest dropped and counted', T, async (t) => {
  const broker = await FakeBroker.start();
  const backend = new StrandsBackend({ port: broker.port });
  t.after(async () => {
    await backend.close();
    await broker.stop();
  });
  const big = 'x'.repeat(1.5 * 1024 * 1024);
  for (let i = 0; i < 8; i++) backend.broadcast(big); // 5 fit in 8 MiB
  assert.equal(backend.droppedSends, 3);
  await backend.connect();
  const peer = await broker.peers.next();
  for (let i = 0; i < 5; i++) assert.equal((await peer.next()).params.message.length, big.length);
  backend.broadcast('end');
  assert.deepEqual((await peer.next()).params, { message: 'end' });
});

test('a decision made for a link that died is not sent on the next link', T, async (t) => {
  const { backend, broker, peer } = await connectedBackend(t, { minBackoffMs: 1, maxBackoffMs: 1 });
  let decide!: (accepted: boolean) => void;
  const asked = new Promise<void>((resolve) => {
    backend.onConnectionRequest(
      () =>
        new Promise((res) => {
          decide = (accepted) => res({ accepted });
          resolve();
        }),
    );
  });
  peer.send(connectionRequest('r1'));
  await asked;
  const reconnected = collect(backend, 'connect', 1);
  peer.kill();
  const p2 = await broker.peers.next();
  await reconnected;
  decide(true);
  await new Promise(setImmediate); // lets the decision's promise callbacks run first
  backend.broadcast('after');
  assert.equal((await p2.next()).action, 'broadcast');
});

test('connect() rejects when reconnect is off and the broker is unreachable', T, async () => {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const backend = new StrandsBackend({ port, reconnect: false });
  await assert.rejects(backend.connect(), { code: 'ECONNREFUSED' });
  assert.equal(backend.connected, false);
  await backend.close();
});

test('the echo backend takes client_id from the query and echoes to the sender, binary as binary', T, async (t) => {
  const broker = await FakeBroker.start();
  const backend = startEchoBackend({ port: broker.port });
  t.after(async () => {
    await backend.close();
    await broker.stop();
  });
  const peer = await broker.peers.next();
  peer.send(connectionRequest('r1', { query: 'client_id=abc&x=1' }));
  assert.deepEqual((await peer.next()).params, { accepted: true, client_id: 'abc' });
  peer.send(connectionRequest('r2'));
  assert.deepEqual((await peer.next()).params, { accepted: true });
  peer.send({ request_id: '9', action: 'new_message', params: { message: 'ping', context: { ...ctx, client_id: 'abc' } } });
  const echo = await peer.next();
  assert.equal(echo.action, 'message_to_connection');
  assert.deepEqual(echo.params, { conn_id: 'abc', message: 'ping' });
  peer.send({ request_id: '10', action: 'new_message', params: { message: 'AAH/', binary: true, context: { ...ctx, client_id: 'abc' } } });
  assert.deepEqual((await peer.next()).params, { conn_id: 'abc', message: 'AAH/', binary: true });
});
