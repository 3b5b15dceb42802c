/**
 * The status page of the metrics port (--status-page): off unless asked for,
 * /stats.json's shape, its figures against real traffic and against /metrics,
 * and room ids only with --status-page-rooms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/logger';
import { MetricsServer } from '../../src/metrics/metrics-server';
import { LARGEST_ROOMS, RATE_SAMPLES, SAMPLE_INTERVAL_MS, type StatusSnapshot } from '../../src/metrics/status-page';
import { ERROR_KINDS } from '../../src/protocol/errors';
import type { StatsView } from '../../src/stats';
import { packageVersion } from '../../src/version';
import { backendFor, brokerFor, joinedClient, waitUntil } from '../helpers/fixtures';
import { sampleValue, scrape } from '../helpers/metrics-probe';
import { readStats, statsWhen } from '../helpers/status';
import { upgradeStatus } from '../helpers/ws-client';

/** A broker with the status page on, no heartbeats (they would move the counters between two reads). */
const STATUS = { metricsPort: 0, statusPage: true, heartbeatInterval: 0 } as const;

test('the status page is off by default: /status, its files and /stats.json are 404 on the metrics port, /metrics is served', async (t) => {
  const broker = await brokerFor(t, { metricsPort: 0 });
  const port = broker.broker.metricsPort;
  for (const path of ['/status', '/status.js', '/status.css', '/stats.json']) {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    assert.equal(response.status, 404, path);
    assert.doesNotMatch(await response.text(), /status/, 'the 404 does not point at a page that is not there');
  }
  assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
});

test('/stats.json: every section, with the types and the limits the page shows; the page and its files with their headers', async (t) => {
  const broker = await brokerFor(t, { ...STATUS, queueSize: 123, queueBytes: 4096 });
  const port = broker.broker.metricsPort;
  const response = await fetch(`http://127.0.0.1:${port}/stats.json?any=query`);
  assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(response.headers.get('cache-control'), 'no-store');
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  const s = (await response.json()) as StatusSnapshot;
  assert.deepEqual(Object.keys(s), ['time', 'node', 'connections', 'rooms', 'backends', 'queue', 'messages', 'rates', 'errors', 'cluster']);
  assert.ok(Math.abs(s.time - Date.now()) < 5000);
  assert.equal(s.node.version, packageVersion());
  assert.ok(s.node.uptimeMs >= 0 && s.node.uptimeMs < 60_000);
  assert.equal(s.node.ready, true, 'a queue can hold events');
  assert.deepEqual(s.connections, {
    open: 0,
    opened: 0,
    waiting: 0,
    refused: 0,
    refusedByStatus: { 403: 0, 429: 0, 502: 0, 503: 0, 504: 0 },
    closedByReason: { normal: 0, going_away: 0, too_big: 0, invalid_utf8: 0, idle_timeout: 0, abnormal: 0, other: 0 },
  });
  assert.deepEqual(s.rooms, { count: 0 }, 'no room list without --status-page-rooms');
  assert.deepEqual(s.backends, { connected: 0, authenticating: 0, dropped: 0, links: [] });
  assert.deepEqual(s.queue, { depth: 0, bytes: 0, dropped: 0, maxEvents: 123, maxBytes: 4096 });
  assert.deepEqual(s.messages, { in: 0, out: 0 });
  assert.equal(s.rates.intervalMs, SAMPLE_INTERVAL_MS);
  assert.equal(s.rates.capacity, RATE_SAMPLES);
  assert.ok(s.rates.until > 0 && s.rates.until <= s.time);
  assert.equal(s.rates.in.length, s.rates.out.length);
  assert.deepEqual(Object.keys(s.errors), [...ERROR_KINDS]);
  assert.ok(Object.values(s.errors).every((n) => n === 0));
  assert.equal(s.cluster, null);

  for (const [path, type] of [
    ['/status', 'text/html; charset=utf-8'],
    ['/status.css', 'text/css; charset=utf-8'],
    ['/status.js', 'text/javascript; charset=utf-8'],
  ]) {
    const file = await fetch(`http://127.0.0.1:${port}${path}`);
    assert.equal(file.status, 200, path);
    assert.equal(file.headers.get('content-type'), type, path);
    assert.equal(file.headers.get('cache-control'), 'no-store', path);
  }
  const policy = (await fetch(`http://127.0.0.1:${port}/status`)).headers.get('content-security-policy') ?? '';
  assert.match(policy, /default-src 'none'/);
  assert.match(policy, /script-src 'self'/);
  assert.match(policy, /frame-ancestors 'none'/);
  assert.equal((await fetch(`http://127.0.0.1:${port}/stats.json`, { method: 'HEAD' })).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${port}/stats.json`, { method: 'POST' })).status, 405);
  assert.match(await (await fetch(`http://127.0.0.1:${port}/nope`)).text(), /\/status/, 'the 404 names the page');
});

test('/stats.json follows real traffic: connections, rooms, backends, messages, the queue, refusals and errors, and agrees with /metrics', async (t) => {
  const broker = await brokerFor(t, STATUS);
  const port = broker.broker.metricsPort;
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is admitted');
  const a = await joinedClient(t, broker, backend, 'a', '/secret-room-one');
  await joinedClient(t, broker, backend, 'b', '/secret-room-two');
  await joinedClient(t, broker, backend, 'c', '/secret-room-two');
  for (let i = 0; i < 5; i++) a.client.ws.send(`m${i}`);
  for (let i = 0; i < 5; i++) await backend.next('new_message');
  backend.send({ request_id: 'r1', action: 'message_to_room', params: { room_id: '/secret-room-two', message: 'hi' } });
  backend.sendRaw('this is not json\n');
  await backend.next('error');

  let s = await readStats(port);
  assert.deepEqual([s.connections.open, s.connections.opened, s.rooms.count], [3, 3, 2]);
  // In: 5 client messages, 3 responses to connection requests, 1 message_to_room. Out: 3 connection requests, 3 new connections, 5 messages.
  assert.deepEqual(s.messages, { in: 9, out: 11 });
  assert.equal(s.errors.invalid_json, 1);
  assert.equal(s.backends.connected, 1);
  assert.equal(s.backends.links.length, 1);
  const [link] = s.backends.links;
  assert.equal(link?.state, 'ready');
  assert.equal(link?.remote, `127.0.0.1:${backend.socket.localPort}`);
  assert.equal(link?.owedBytes, 0);
  assert.equal(link?.heldEvents, 0);
  assert.ok(!JSON.stringify(s).includes('secret-room'), 'no room id without --status-page-rooms');

  const samples = await scrape(port);
  const total = (name: string): number => samples.filter((x) => x.name === name).reduce((n, x) => n + x.value, 0);
  assert.equal(s.messages.in, total('strands_messages_in_total'));
  assert.equal(s.messages.out, total('strands_messages_out_total'));
  assert.equal(s.connections.open, sampleValue(samples, 'strands_connections_open'));
  assert.equal(s.rooms.count, sampleValue(samples, 'strands_rooms'));
  for (const kind of ERROR_KINDS) assert.equal(s.errors[kind], sampleValue(samples, 'strands_errors_total', { kind }), kind);

  // No backend: a new client is refused with 503, and what the open ones send waits in the queue.
  await backend.close();
  await waitUntil(() => broker.broker.stats.backends.connected === 0, 'the backend is gone');
  assert.equal(await upgradeStatus(broker.url('/late?client_id=d')), 503);
  a.client.ws.send('queued');
  s = await statsWhen(port, (x) => x.queue.depth === 1, 'the message is queued');
  assert.ok(s.queue.bytes > 0);
  assert.deepEqual([s.connections.refused, s.connections.refusedByStatus[503], s.backends.connected, s.backends.links.length], [1, 1, 0, 0]);

  await a.client.close();
  s = await statsWhen(port, (x) => x.connections.open === 2, 'the closed client is counted');
  assert.equal(s.connections.closedByReason.normal, 1);
  assert.equal(s.rooms.count, 1);
});

test('the rates: a sample a second, in and out per second, whose peak follows the traffic and falls back to 0 when it stops', async (t) => {
  const broker = await brokerFor(t, STATUS);
  const port = broker.broker.metricsPort;
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { client } = await joinedClient(t, broker, backend, 'sender');
  for (let i = 0; i < 200; i++) client.ws.send(`m${i}`);
  for (let i = 0; i < 200; i++) await backend.next('new_message');
  const counted = Date.now();
  const sent = await statsWhen(port, (s) => s.rates.until > counted, 'a sample after the burst', 5000);
  const busiest = Math.max(...sent.rates.in);
  // 200 messages (and the connection's response) within one or two samples of about a second each; a
  // sample taken late on a busy machine divides by the longer time, so the peak is not pinned to 200.
  assert.ok(busiest >= 50 && busiest <= 402, `peak in ${busiest}/s`);
  assert.ok(Math.max(...sent.rates.out) >= 50, 'each message went out to the backend too');
  const quiet = await statsWhen(port, (s) => s.rates.until > sent.rates.until, 'a sample with no traffic', 5000);
  assert.equal(quiet.rates.in.at(-1), 0);
  assert.equal(quiet.rates.out.at(-1), 0);
});

test('with --status-page-rooms: the largest rooms by distinct client ids, ties by room id, at most ten', async (t) => {
  const broker = await brokerFor(t, { ...STATUS, statusPageRooms: true });
  const port = broker.broker.metricsPort;
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  for (const [id, room] of [
    ['b1', '/big'],
    ['b2', '/big'],
    ['b3', '/big'],
    ['m1', '/mid'],
    ['m2', '/mid'],
    ['s1', '/small'],
    ['d1', '/dup'],
    ['d1', '/dup'],
  ]) {
    await joinedClient(t, broker, backend, id as string, room);
  }
  const expected = [
    { room: '/big', members: 3 },
    { room: '/mid', members: 2 },
    // Two sockets of one client id are one member, as room_info counts them.
    { room: '/dup', members: 1 },
    { room: '/small', members: 1 },
  ];
  assert.deepEqual(broker.broker.stats.largestRooms(10), expected);
  assert.deepEqual(broker.broker.stats.largestRooms(2), expected.slice(0, 2));
  assert.deepEqual(broker.broker.stats.largestRooms(0), []);
  let s = await statsWhen(port, (x) => x.rooms.largest?.length === 4, 'four rooms listed');
  assert.deepEqual(s.rooms, { count: 4, largest: expected });

  // m1 joins twelve more rooms of one member each: sixteen rooms, ten listed.
  for (let i = 0; i < 12; i++) backend.send({ request_id: `j${i}`, action: 'join_room', params: { conn_id: 'm1', room_id: `/z${String(i).padStart(2, '0')}` } });
  await waitUntil(() => broker.broker.stats.rooms === 16, 'sixteen rooms');
  s = await statsWhen(port, (x) => x.rooms.count === 16 && x.rooms.largest?.some((r) => r.room.startsWith('/z')) === true, 'the new rooms listed');
  assert.equal(s.rooms.largest?.length, LARGEST_ROOMS);
  assert.deepEqual(
    s.rooms.largest?.map((r) => r.room),
    ['/big', '/mid', '/dup', '/small', '/z00', '/z01', '/z02', '/z03', '/z04', '/z05'],
  );
});

test('the largest rooms are looked for at most once a second, however often /stats.json is asked for', async (t) => {
  const broker = await brokerFor(t, { heartbeatInterval: 0 });
  let passes = 0;
  const counted: StatsView = Object.create(broker.broker.stats, {
    largestRooms: { value: (n: number) => (passes++, broker.broker.stats.largestRooms(n)) },
  }) as StatsView;
  const server = new MetricsServer(counted, '127.0.0.1', 0, createLogger('silent'), { rooms: true, queueLimits: { events: 1, bytes: 1024 } });
  await server.start();
  t.after(() => server.stop());
  const started = Date.now();
  await Promise.all(Array.from({ length: 100 }, () => readStats(server.listeningPort)));
  const allowed = 1 + Math.ceil((Date.now() - started) / SAMPLE_INTERVAL_MS);
  assert.ok(passes >= 1 && passes <= allowed, `${passes} passes over the rooms for 100 reads in ${Date.now() - started} ms`);
});
