import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import type { TestContext } from 'node:test';
import type { StrandsClient as Client, StrandsClientEvents, StrandsClientOptions } from '../../dist/browser/strands-client';
import { StrandsBackend } from '../../src/sdk';
import { AsyncQueue } from '../helpers/async-queue';
import { CLIENT_BUNDLE } from '../helpers/browser';
import { brokerFor, waitUntil } from '../helpers/fixtures';
import { echo, echoBroker, tinyServer } from './fixtures';

// The built ES module, as a browser or `import 'strands-broker/browser'` gets it.
const { StrandsClient } = require(CLIENT_BUNDLE) as typeof import('../../dist/browser/strands-client');

type Recorded = { [K in keyof StrandsClientEvents]: { type: K } & StrandsClientEvents[K] }[keyof StrandsClientEvents];
const EVENT_TYPES: (keyof StrandsClientEvents)[] = ['open', 'message', 'close', 'reconnecting', 'failed', 'error'];

interface Recording {
  client: Client;
  events: AsyncQueue<Recorded>;
  next<K extends keyof StrandsClientEvents>(type: K, timeoutMs?: number): Promise<Extract<Recorded, { type: K }>>;
  /** The next `count` events of any type, in order. */
  take(count: number): Promise<Recorded[]>;
}

/** A client on `ws`, every event recorded; closed when the test ends. */
function clientFor(t: TestContext, url: string, options: StrandsClientOptions = {}): Recording {
  const client = new StrandsClient(url, { WebSocket, ...options });
  const events = new AsyncQueue<Recorded>();
  for (const type of EVENT_TYPES) client.on(type, (event) => events.push({ type, ...event } as Recorded));
  t.after(() => client.close());
  const next = <K extends keyof StrandsClientEvents>(type: K, timeoutMs = 5000) =>
    events.next((e) => e.type === type, timeoutMs, `a ${type} event`) as Promise<Extract<Recorded, { type: K }>>;
  const take = async (count: number) => {
    const taken: Recorded[] = [];
    while (taken.length < count) taken.push(await events.next(() => true, 5000, `event ${taken.length + 1} of ${count}`));
    return taken;
  };
  return { client, events, next, take };
}

/** The delay ceiling of the n-th retry: min(max, min * 2^(n-1)). */
const ceiling = (n: number, min: number, max: number): number => Math.min(max, min * 2 ** (n - 1));

test('talks to a real broker: sends made before the open are flushed first, then text both ways, the query on the URL', async (t) => {
  const broker = await echoBroker(t);
  const { client, next } = clientFor(t, broker.url('/room'), { query: { client_id: 'alice', unused: null } });
  assert.equal(client.state, 'connecting');
  assert.equal(client.send('early'), true);
  assert.equal(client.buffered, 1);
  assert.deepEqual(await next('open'), { type: 'open', flushed: 1 });
  assert.equal(client.state, 'open');
  assert.equal(client.buffered, 0);
  assert.equal((await next('message')).data, 'early');
  assert.equal(client.send('héllo ☃'), true);
  assert.equal((await next('message')).data, 'héllo ☃');
  client.close();
  assert.deepEqual(await next('close'), { type: 'close', code: 1000, reason: '', willReconnect: false });
  assert.equal(client.state, 'closed');
});

test('the query function runs on every attempt: a refreshed token gets in after a 403', async (t) => {
  const broker = await brokerFor(t);
  const tokens: (string | undefined)[] = [];
  const backend = new StrandsBackend({ port: broker.tcpPort }).onConnectionRequest((req) => {
    tokens.push(req.queryParam('token'));
    return { accepted: req.queryParam('token') === 'fresh' };
  });
  t.after(() => backend.close());
  await backend.connect();
  let calls = 0;
  const { next } = clientFor(t, broker.url('/'), {
    minDelayMs: 5,
    query: async () => ({ token: calls++ === 0 ? 'stale' : 'fresh' }),
  });
  const retry = await next('reconnecting');
  assert.equal(retry.attempt, 1);
  assert.ok(retry.delay >= 0 && retry.delay <= 5, `delay ${retry.delay}`);
  await next('open');
  assert.deepEqual(tokens, ['stale', 'fresh']);
});

test('handshake failures (503: no backend) back off with full jitter and end with `failed`; the buffer is then discarded', async (t) => {
  const broker = await brokerFor(t);
  const { client, take } = clientFor(t, broker.url('/'), { minDelayMs: 10, maxDelayMs: 25, maxAttempts: 4 });
  assert.equal(client.send('never delivered'), true);
  const events = await take(4);
  assert.deepEqual(
    events.map((e) => (e.type === 'reconnecting' ? `reconnecting ${e.attempt}` : e.type)),
    ['reconnecting 1', 'reconnecting 2', 'reconnecting 3', 'failed'],
  );
  for (const e of events) if (e.type === 'reconnecting') assert.ok(e.delay >= 0 && e.delay <= ceiling(e.attempt, 10, 25), `attempt ${e.attempt}: delay ${e.delay}`);
  assert.deepEqual(events[3], { type: 'failed', attempts: 4 });
  assert.equal(client.state, 'closed');
  assert.equal(client.buffered, 0);
  assert.equal(client.dropped, 1);
  assert.equal(client.send('after failed'), false);
  assert.equal(client.dropped, 2);
});

test('a 1001 from a stopping broker: back after a short random delay, on a new broker on the same port, and the sends made meanwhile arrive in order', async (t) => {
  const first = await echoBroker(t);
  const { client, next } = clientFor(t, first.url('/room'), { query: { client_id: 'carol' }, goingAwayDelayMs: 100, minDelayMs: 10, maxDelayMs: 50, maxAttempts: Infinity });
  await next('open');
  client.send('before');
  assert.equal((await next('message')).data, 'before');

  await first.stop();
  assert.deepEqual(await next('close'), { type: 'close', code: 1001, reason: 'server going away, please reconnect', willReconnect: true });
  const retry = await next('reconnecting');
  assert.equal(retry.attempt, 1);
  assert.ok(retry.delay >= 0 && retry.delay <= 100, `delay ${retry.delay}`);
  assert.equal(client.send('during 1'), true);
  assert.equal(client.send('during 2'), true);
  assert.equal(client.buffered, 2);

  await echoBroker(t, { wsPort: first.wsPort });
  assert.deepEqual(await next('open', 10_000), { type: 'open', flushed: 2 });
  assert.equal((await next('message')).data, 'during 1');
  assert.equal((await next('message')).data, 'during 2');
  assert.equal(client.dropped, 0);
});

test('after a 1001 the clients of a broker come back spread over the going-away delay, not at once', async (t) => {
  const broker = await echoBroker(t);
  const clients = Array.from({ length: 8 }, () => clientFor(t, broker.url('/'), { goingAwayDelayMs: 1000, minDelayMs: 10, maxDelayMs: 50 }));
  await Promise.all(clients.map((c) => c.next('open')));
  await broker.stop();
  const delays = await Promise.all(clients.map(async (c) => (await c.next('reconnecting')).delay));
  for (const delay of delays) assert.ok(delay >= 0 && delay <= 1000, `delay ${delay}`);
  assert.ok(new Set(delays).size > 1, `every client would come back at the same moment: ${delays.join(', ')}`);
  // Drawn below goingAwayDelayMs, not below the 10 ms backoff step: all 8 under 10 ms has a chance of 1e-16.
  assert.ok(Math.max(...delays) > 10, `the going-away delay was not used: ${delays.join(', ')}`);
});

test('1008 and 4000-4999 stop the client: the backend closed it on purpose', async (t) => {
  const server = await tinyServer(t, (ws, req) => ws.close(Number(req.url?.slice(1)), 'go away'));
  for (const code of [1008, 4000, 4321, 4999]) {
    const { client, next, events } = clientFor(t, server.url(`/${code}`));
    await next('open');
    assert.deepEqual(await next('close'), { type: 'close', code, reason: 'go away', willReconnect: false });
    assert.equal(client.state, 'closed');
    assert.deepEqual(events.pending, [], 'no reconnecting event');
    assert.equal(client.send('x'), false);
  }
});

test('other closes after an open reconnect with backoff: 1000, 1011, 3000, 3999 and a dropped TCP connection (1006)', async (t) => {
  const seen = new Map<string, number>();
  const server = await tinyServer(t, (ws, req) => {
    const path = req.url ?? '';
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    if (n > 1) return;
    if (path === '/drop') ws.terminate();
    else ws.close(Number(path.slice(1)), 'bye');
  });
  for (const [path, code, reason] of [['/1000', 1000, 'bye'], ['/1011', 1011, 'bye'], ['/3000', 3000, 'bye'], ['/3999', 3999, 'bye'], ['/drop', 1006, '']] as const) {
    const { next } = clientFor(t, server.url(path), { minDelayMs: 10 });
    await next('open');
    assert.deepEqual(await next('close'), { type: 'close', code, reason, willReconnect: true });
    const retry = await next('reconnecting');
    assert.equal(retry.attempt, 1);
    assert.ok(retry.delay >= 0 && retry.delay <= 10, `${path}: delay ${retry.delay}`);
    await next('open');
    assert.equal(seen.get(path), 2);
  }
});

test('a connection that closes right after it opens does not restart the backoff; one that stayed up stableAfterMs does', async (t) => {
  const server = await tinyServer(t, (ws) => ws.close(1011, 'crash'));
  const attempts = async (options: StrandsClientOptions): Promise<number[]> => {
    const { client, next } = clientFor(t, server.url('/'), { minDelayMs: 2, maxDelayMs: 1000, ...options });
    const seen: number[] = [];
    while (seen.length < 4) seen.push((await next('reconnecting')).attempt);
    client.close();
    return seen;
  };
  assert.deepEqual(await attempts({}), [1, 2, 3, 4]);
  assert.deepEqual(await attempts({ stableAfterMs: 0 }), [1, 1, 1, 1]);
});

test('binary: ArrayBuffer, Uint8Array and other views go out as binary frames (only the view\'s bytes) and come back as Uint8Array; text stays text', async (t) => {
  const server = await tinyServer(t, echo);
  const { client, next } = clientFor(t, server.url('/'));
  await next('open');
  const backing = new Uint8Array([0, 7, 8, 0]);
  client.send(new Uint8Array([1, 2, 3]));
  client.send(new Uint8Array([4, 5]).buffer);
  client.send(new DataView(backing.buffer, 1, 2));
  client.send('text');
  const received: (string | Uint8Array)[] = [];
  for (let i = 0; i < 4; i++) received.push((await next('message')).data);
  assert.deepEqual(received, [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5]), new Uint8Array([7, 8]), 'text']);
});

test('the buffer holds sends while not connected, up to its count and bytes; refusals are counted; binary is copied; order is kept', async (t) => {
  const held: ((ok: boolean) => void)[] = [];
  const server = await tinyServer(t, undefined, { verifyClient: (_info, answer) => held.push(answer) });
  const { client, next } = clientFor(t, server.url('/'), { maxBufferedMessages: 4, maxBufferedBytes: 12 });
  const bytes = new Uint8Array([1, 2, 3]);
  assert.equal(client.send('abc'), true);
  assert.equal(client.send('é€'), true, '5 UTF-8 bytes');
  assert.equal(client.send(bytes), true);
  bytes[0] = 9;
  assert.equal(client.bufferedBytes, 11);
  assert.equal(client.send('xy'), false, 'over the bytes');
  assert.equal(client.send('x'.repeat(1 << 20)), false, 'far over the bytes');
  assert.equal(client.send('z'), true);
  assert.equal(client.send('w'), false, 'over the count');
  assert.deepEqual([client.buffered, client.bufferedBytes, client.dropped], [4, 12, 3]);
  assert.throws(() => client.send(42 as never), TypeError);
  assert.throws(() => client.send({ length: 1 } as never), TypeError);
  assert.throws(() => client.send(null as never), TypeError);

  await waitUntil(() => held.length === 1, 'the upgrade reached the server');
  held[0]?.(true);
  const { ws } = await server.connections.next();
  const received: unknown[] = [];
  ws.on('message', (data, isBinary) => received.push(isBinary ? [...(data as Buffer)] : data.toString()));
  assert.deepEqual(await next('open'), { type: 'open', flushed: 4 });
  assert.deepEqual([client.buffered, client.bufferedBytes, client.dropped], [0, 0, 3]);
  await waitUntil(() => received.length === 4, 'the server received the 4 buffered sends');
  assert.deepEqual(received, ['abc', 'é€', [1, 2, 3], 'z']);
});

test('maxBufferedMessages 0 refuses every send made while not connected', async (t) => {
  const server = await tinyServer(t);
  const { client, next } = clientFor(t, server.url('/'), { maxBufferedMessages: 0 });
  assert.equal(client.send('x'), false);
  assert.equal(client.dropped, 1);
  assert.deepEqual(await next('open'), { type: 'open', flushed: 0 });
  assert.equal(client.send('y'), true);
});

test('an upgrade nobody answers, or a query promise that never settles, is abandoned after connectTimeoutMs and retried', async (t) => {
  let accepted = 0;
  const dropped = new AsyncQueue<Socket>();
  const silent = createServer((socket) => {
    accepted++;
    socket.on('close', () => dropped.push(socket)).resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  const port = (silent.address() as AddressInfo).port;

  const { take } = clientFor(t, `ws://127.0.0.1:${port}/`, { connectTimeoutMs: 50, minDelayMs: 1, maxAttempts: 2 });
  assert.deepEqual((await take(2)).map((e) => e.type), ['reconnecting', 'failed']);
  // The client dropped each connection it gave up on.
  await dropped.next();
  await dropped.next();
  assert.equal(accepted, 2);

  const hanging = clientFor(t, `ws://127.0.0.1:${port}/`, { connectTimeoutMs: 50, minDelayMs: 1, maxAttempts: 2, query: () => new Promise(() => undefined) });
  assert.deepEqual((await hanging.take(2)).map((e) => e.type), ['reconnecting', 'failed']);
  assert.equal(accepted, 2, 'no connection was made while the query was pending');
});

test('connectTimeoutMs covers the handshake only: a connection open longer than it stays open', async (t) => {
  const server = await tinyServer(t, (ws) => setTimeout(() => ws.send('late'), 150));
  const { client, next, events } = clientFor(t, server.url('/'), { connectTimeoutMs: 50 });
  await next('open');
  assert.equal((await next('message')).data, 'late');
  assert.equal(client.state, 'open');
  assert.deepEqual(events.pending, []);
});

test('a query function that throws, rejects or returns no object: an `error` event, and the attempt counts as failed', async (t) => {
  const server = await tinyServer(t);
  const answers: (() => unknown)[] = [
    () => {
      throw new Error('no token');
    },
    () => Promise.reject(new Error('refresh failed')),
    () => 'not an object',
    () => ({ token: 'ok' }),
  ];
  const { take } = clientFor(t, server.url('/'), { minDelayMs: 1, query: () => (answers.shift() as () => never)() });
  const events = await take(7);
  assert.deepEqual(
    events.map((e) => (e.type === 'error' ? `error ${String(e.error)}` : e.type === 'reconnecting' ? `reconnecting ${e.attempt}` : e.type)),
    ['error Error: no token', 'reconnecting 1', 'error Error: refresh failed', 'reconnecting 2', 'error TypeError: StrandsClient: query must be an object of parameters', 'reconnecting 3', 'open'],
  );
  assert.equal((await server.connections.next()).path, '/?token=ok');
  assert.deepEqual(server.connections.pending, []);
});

test('query values: numbers and booleans as text, null and undefined left out, URL parameters overridden, all encoded; an http URL becomes ws and its fragment goes', async (t) => {
  const server = await tinyServer(t);
  const { next } = clientFor(t, `http://127.0.0.1:${server.port}/p?keep=1&token=old#fragment`, { query: { token: 'a b&c=d', n: 3, yes: true, none: null, gone: undefined } });
  await next('open');
  assert.equal((await server.connections.next()).path, '/p?keep=1&token=a+b%26c%3Dd&n=3&yes=true');
});

test('close(): stops for good while open, reconnecting or connecting; the buffer is discarded and counted', async (t) => {
  const server = await tinyServer(t);
  const open = clientFor(t, server.url('/'));
  await open.next('open');
  open.client.close(4001, 'bye');
  assert.equal(open.client.state, 'closed');
  assert.deepEqual(await open.next('close'), { type: 'close', code: 4001, reason: 'bye', willReconnect: false });
  assert.equal(open.client.send('x'), false);
  assert.equal(open.client.dropped, 1);

  const unused = createServer();
  await new Promise<void>((resolve) => unused.listen(0, '127.0.0.1', resolve));
  const deadPort = (unused.address() as AddressInfo).port;
  await new Promise((resolve) => unused.close(resolve));
  const waiting = clientFor(t, `ws://127.0.0.1:${deadPort}/`, { minDelayMs: 60_000, maxDelayMs: 60_000 });
  await waiting.next('reconnecting');
  assert.equal(waiting.client.state, 'reconnecting');
  assert.equal(waiting.client.send('held'), true);
  waiting.client.close();
  assert.deepEqual([waiting.client.state, waiting.client.buffered, waiting.client.dropped], ['closed', 0, 1]);
  assert.deepEqual(waiting.events.pending, []);

  const upgrades = new AsyncQueue<Socket>();
  const slow = await tinyServer(t, undefined, { verifyClient: (info: { req: IncomingMessage }, _answer: (ok: boolean) => void) => upgrades.push(info.req.socket) });
  const connecting = clientFor(t, slow.url('/'));
  const upgrade = await upgrades.next();
  // The HTTP server's sockets are half-open: the client's FIN shows as 'end'.
  const aborted = new Promise((resolve) => upgrade.once('end', resolve).resume());
  connecting.client.close();
  assert.equal(connecting.client.state, 'closed');
  await aborted;
  assert.deepEqual(connecting.events.pending, []);
});

test('close() refuses codes and reasons a WebSocket would throw on, and leaves the client as it was', async (t) => {
  const server = await tinyServer(t);
  const { client, next } = clientFor(t, server.url('/'));
  await next('open');
  assert.throws(() => client.close(1001), RangeError);
  assert.throws(() => client.close(2999), RangeError);
  assert.throws(() => client.close(5000), RangeError);
  assert.throws(() => client.close(1000, 'é'.repeat(62)), RangeError);
  assert.equal(client.state, 'open');
  client.close(1000, 'é'.repeat(61));
  assert.deepEqual(await next('close'), { type: 'close', code: 1000, reason: 'é'.repeat(61), willReconnect: false });
});

test('bad URLs and options are refused by the constructor', () => {
  for (const url of ['ftp://127.0.0.1/', 'not a url', '']) assert.throws(() => new StrandsClient(url, { WebSocket }), /URL|Invalid/);
  const bad: StrandsClientOptions[] = [
    { minDelayMs: -1 },
    { minDelayMs: Number.NaN },
    { minDelayMs: Infinity },
    { minDelayMs: '5' as never },
    { minDelayMs: 100, maxDelayMs: 50 },
    { maxAttempts: 0 },
    { maxAttempts: 1.5 },
    { goingAwayDelayMs: -5 },
    { connectTimeoutMs: 0 },
    { stableAfterMs: -1 },
    { maxBufferedMessages: -1 },
    { maxBufferedMessages: Infinity },
    { maxBufferedBytes: -1 },
  ];
  for (const options of bad) assert.throws(() => new StrandsClient('ws://127.0.0.1:1/', { WebSocket, ...options }), RangeError, JSON.stringify(options));
});

test('the WebSocket constructor defaults to globalThis.WebSocket, and without one the constructor says what to pass', async (t) => {
  const global = globalThis as { WebSocket?: unknown };
  const saved = Object.getOwnPropertyDescriptor(global, 'WebSocket');
  t.after(() => {
    if (saved) Object.defineProperty(global, 'WebSocket', saved);
    else delete global.WebSocket;
  });
  delete global.WebSocket;
  assert.throws(() => new StrandsClient('ws://127.0.0.1:1/'), /pass options.WebSocket/);
  global.WebSocket = WebSocket;
  const server = await tinyServer(t);
  const client = new StrandsClient(server.url('/'));
  t.after(() => client.close());
  await new Promise((resolve) => client.on('open', resolve));
  assert.equal(client.state, 'open');
});

test('on() returns a function that removes the listener', async (t) => {
  const server = await tinyServer(t, echo);
  const { client, next } = clientFor(t, server.url('/'));
  const seen: unknown[] = [];
  const off = client.on('message', (e) => seen.push(e.data));
  await next('open');
  client.send('one');
  await next('message');
  off();
  client.send('two');
  await next('message');
  assert.deepEqual(seen, ['one']);
});
