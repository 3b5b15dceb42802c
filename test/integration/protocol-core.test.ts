/**
 * docs/protocol.md part 1 (the compatible core), row by row, on the wire: what an unchanged PyStrands
 * backend sees and sends. Every backend line here is byte for byte what the
 * Python client writes (python-json.ts).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerConfig } from '../../src/config';
import { backendFor, brokerFor, nextLine, pyJoin, takeAcross, UUID_V4, waitUntil } from '../helpers/fixtures';
import { pyAccept, pyDumps, pyLine, pySend } from '../helpers/python-json';
import type { Line } from '../helpers/raw-backend';
import { acceptFor, rawUpgrade } from '../helpers/raw-upgrade';
import { openClient } from '../helpers/ws-client';

test('python-json formats exactly like json.dumps with default arguments', () => {
  assert.equal(pyDumps({ a: 1, b: [true, null, 'x'], c: { d: 'é✓"\\\n\u007f😀' } }), '{"a": 1, "b": [true, null, "x"], "c": {"d": "\\u00e9\\u2713\\"\\\\\\n\\u007f\\ud83d\\ude00"}}');
  assert.equal(pyLine('broadcast', { message: 'hi' }, 'r1'), '{"action": "broadcast", "request_id": "r1", "params": {"message": "hi"}}\n');
});

test('connection_request: UUID v4 request_id, every header value under its Go-canonical name, url without query, raw query, remote_addr', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const upgrading = rawUpgrade(broker.wsPort, '/ws/chat?token=abc%20def&x=1&x=2', [
    ['Authorization', 'Bearer s3cret'],
    ['X-Multi', 'a'],
    ['X-Multi', 'b'],
    ['x-lower-case', 'v1'],
    ['X-SHOUTED-NAME', 'v2'],
  ]);
  const request = await backend.next('connection_request');
  assert.match(request.request_id, UUID_V4);
  const { headers, url, query, remote_addr } = request.params;
  assert.deepEqual(headers['X-Multi'], ['a', 'b']);
  assert.deepEqual(headers['Authorization'], ['Bearer s3cret']);
  assert.deepEqual(headers['X-Lower-Case'], ['v1']);
  assert.deepEqual(headers['X-Shouted-Name'], ['v2']);
  assert.deepEqual(headers['Sec-Websocket-Version'], ['13']);
  assert.deepEqual(headers['Upgrade'], ['websocket']);
  assert.equal(headers['Sec-Websocket-Key']?.length, 1);
  for (const [name, values] of Object.entries(headers as Record<string, unknown>)) {
    assert.match(name, /^[A-Z0-9][a-z0-9]*(-[A-Z0-9][a-z0-9]*)*$/, `header name ${name} is not Go-canonical`);
    assert.ok(Array.isArray(values) && values.every((v) => typeof v === 'string'), `header ${name} is not a list of strings`);
  }
  assert.equal(url, '/ws/chat');
  assert.equal(query, 'token=abc%20def&x=1&x=2');

  pyAccept(backend, request, { client_id: 'raw-1', room_id: 'lobby' });
  const upgraded = await upgrading;
  t.after(() => upgraded.socket.destroy());
  assert.equal(upgraded.status, 101);
  assert.equal(upgraded.headers['sec-websocket-accept'], acceptFor(upgraded.key));
  assert.deepEqual(headers['Sec-Websocket-Key'], [upgraded.key]);
  // `ip:port` where the port is known; this uWS build does not expose the peer's port, so the ip alone is allowed.
  assert.ok(remote_addr === `127.0.0.1:${upgraded.localPort}` || remote_addr === '127.0.0.1', `remote_addr ${remote_addr}`);

  const opened = await backend.next('new_connection');
  assert.deepEqual(opened.params.context, { client_id: 'raw-1', room_id: 'lobby', metadata: {} });
  upgraded.socket.destroy();
  assert.deepEqual((await backend.next('disconnected')).params.context, { client_id: 'raw-1', room_id: 'lobby', metadata: {} });
});

test('connection_request from a client with no query string: query is "" and url is the path', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const opening = openClient(broker.url('/plain/path'));
  const request = await backend.next('connection_request');
  assert.equal(request.params.url, '/plain/path');
  assert.equal(request.params.query, '');
  assert.match(request.params.remote_addr, /^127\.0\.0\.1(:\d+)?$/);
  pyAccept(backend, request);
  const client = await opening;
  t.after(() => client.ws.terminate());
  const opened = await backend.next('new_connection');
  assert.equal(opened.params.context.room_id, '/plain/path');
});

test('accepted: new_connection carries the context, new_message the text and context, disconnected follows the close', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const { client, opened } = await pyJoin(t, broker, [backend], 'alice', '/ws/chat', { room_id: 'general', metadata: { name: 'Alice' } });
  const context = { client_id: 'alice', room_id: 'general', metadata: { name: 'Alice' } };
  assert.deepEqual(opened.params.context, context);
  assert.equal(typeof opened.request_id, 'string');

  client.ws.send('héllo ✓ "quoted"\n');
  const message = await backend.next('new_message');
  assert.equal(message.params.message, 'héllo ✓ "quoted"\n');
  assert.deepEqual(message.params.context, context);
  assert.notEqual(message.request_id, opened.request_id, 'event request_ids are unique');

  client.ws.send('');
  assert.equal((await backend.next('new_message')).params.message, '', 'an empty message is still a message');

  await client.close();
  const gone = await backend.next('disconnected');
  assert.deepEqual(gone.params.context, context);
  assert.ok(![opened.request_id, message.request_id].includes(gone.request_id), 'event request_ids are unique');
});

test('message_to_connection reaches that client only', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const alice = (await pyJoin(t, broker, [backend], 'alice')).client;
  const bob = (await pyJoin(t, broker, [backend], 'bob')).client;
  pySend(backend, 'message_to_connection', { conn_id: 'alice', message: 'for alice ✓' });
  pySend(backend, 'message_to_connection', { conn_id: 'bob', message: 'for bob' });
  assert.equal(await alice.nextMessage(), 'for alice ✓');
  assert.equal(await bob.nextMessage(), 'for bob', 'bob got alice\'s message first');
  assert.equal(alice.messages.pending.length, 0);
});

test('message_to_room reaches both clients in the room and not the one outside', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const a1 = (await pyJoin(t, broker, [backend], 'a1', '/rooms/a')).client;
  const a2 = (await pyJoin(t, broker, [backend], 'a2', '/rooms/a')).client;
  const outsider = (await pyJoin(t, broker, [backend], 'b1', '/rooms/b')).client;
  pySend(backend, 'message_to_room', { room_id: '/rooms/a', message: 'room a only' });
  // Lines are acted on in order: the outsider's first message must be this one.
  pySend(backend, 'message_to_connection', { conn_id: 'b1', message: 'marker' });
  assert.equal(await a1.nextMessage(), 'room a only');
  assert.equal(await a2.nextMessage(), 'room a only');
  assert.equal(await outsider.nextMessage(), 'marker');
});

test('broadcast reaches every client, whatever its room', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const clients = [];
  for (const [id, room] of [['c1', '/x'], ['c2', '/y'], ['c3', '/y']] as const) clients.push((await pyJoin(t, broker, [backend], id, room)).client);
  pySend(backend, 'broadcast', { message: 'to everyone' });
  for (const client of clients) assert.equal(await client.nextMessage(), 'to everyone');
});

test('heartbeat: request_id "heartbeat", action heartbeat, params {} at the configured interval', async (t) => {
  const broker = await brokerFor(t, { heartbeatInterval: 50 });
  const backend = await backendFor(t, broker.tcpPort);
  for (let i = 0; i < 2; i++) {
    const beat = await backend.lines.next((l) => l.request_id === 'heartbeat', 5000, 'a heartbeat');
    assert.deepEqual(beat, { request_id: 'heartbeat', action: 'heartbeat', params: {} });
  }
});

test('framing: a line written one byte at a time (a multi-byte character split too) is one line', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const { client } = await pyJoin(t, broker, [backend], 'alice');
  backend.socket.setNoDelay(true);
  // Raw UTF-8 (not ensure_ascii): "✓" is three bytes, each written on its own.
  const bytes = Buffer.from(JSON.stringify({ request_id: 'r', action: 'broadcast', params: { message: 'split ✓ line' } }) + '\n');
  for (const byte of bytes) await new Promise<void>((resolve, reject) => backend.socket.write(Buffer.of(byte), (err) => (err ? reject(err) : resolve())));
  assert.equal(await client.nextMessage(), 'split ✓ line');
  // And the Python form of the same, split in two halves.
  const line = pyLine('broadcast', { message: 'split ✓ again' });
  backend.sendRaw(line.slice(0, 20));
  backend.sendRaw(line.slice(20));
  assert.equal(await client.nextMessage(), 'split ✓ again');
});

test('framing: many lines in one write, \\r\\n endings and blank lines between are all accepted, in order', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const { client } = await pyJoin(t, broker, [backend], 'alice');
  const crlf = (line: string): string => line.replace(/\n$/, '\r\n');
  backend.sendRaw(
    '\n\r\n' +
      pyLine('broadcast', { message: 'one' }) +
      '\n\n' +
      crlf(pyLine('message_to_connection', { conn_id: 'alice', message: 'two' })) +
      '\r\n\n\r\n' +
      crlf(pyLine('message_to_room', { room_id: '/room', message: 'three' })) +
      pyLine('broadcast', { message: 'four' }) +
      // A sentinel the broker must refuse: the first error event must be about it, not about a blank line.
      pyLine('sentinel_action', {}, 'sentinel-id'),
  );
  for (const expected of ['one', 'two', 'three', 'four']) assert.equal(await client.nextMessage(), expected);
  const error = await nextLine(backend);
  assert.equal(error.action, 'error');
  assert.match(error.params.error, /sentinel_action/);
});

test('two backends: one client\'s events are spread round-robin over both, none lost', async (t) => {
  const broker = await brokerFor(t);
  const backends = [await backendFor(t, broker.tcpPort), await backendFor(t, broker.tcpPort)];
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');
  const { client } = await pyJoin(t, broker, backends, 'alice');
  const N = 20;
  for (let i = 0; i < N; i++) client.ws.send(`m${i}`);
  const [first, second] = await takeAcross(backends, N, (l) => l.action === 'new_message');
  assert.ok(first && first.length > 0, 'the first backend got no new_message');
  assert.ok(second && second.length > 0, 'the second backend got no new_message');
  assert.equal(first.length + second.length, N);
  const index = (l: Line): number => Number(l.params.message.slice(1));
  for (const lines of [first, second]) {
    const order = lines.map(index);
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'each backend gets its share in order');
  }
  assert.deepEqual([...first, ...second].map(index).sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
});

/** A client connected through a backend that then leaves: the broker is left with no backend. */
async function clientWithoutBackend(t: TestContext, overrides: Partial<BrokerConfig>) {
  const broker = await brokerFor(t, overrides);
  const first = await backendFor(t, broker.tcpPort);
  const { client } = await pyJoin(t, broker, [first], 'alice');
  await first.close();
  await waitUntil(() => broker.broker.stats.backends.connected === 0, 'the broker dropped the departed backend');
  return { broker, client };
}

test('queue: with no backend, events are held and go FIFO to the next backend, before newer events', async (t) => {
  const { broker, client } = await clientWithoutBackend(t, {});
  for (let i = 1; i <= 5; i++) {
    client.ws.send(`m${i}`);
    await waitUntil(() => broker.broker.stats.queue.depth === i, `m${i} is queued`);
  }
  const next = await backendFor(t, broker.tcpPort);
  client.ws.send('m6');
  for (let i = 1; i <= 6; i++) {
    const line = await nextLine(next);
    assert.equal(line.action, 'new_message');
    assert.equal(line.params.message, `m${i}`);
    assert.deepEqual(line.params.context, { client_id: 'alice', room_id: '/room', metadata: {} });
  }
  await client.close();
  assert.equal((await nextLine(next)).action, 'disconnected');
});

test('queue: --queue-size 0 drops events while no backend is connected', async (t) => {
  const { broker, client } = await clientWithoutBackend(t, { queueSize: 0 });
  client.ws.send('dropped');
  await waitUntil(() => broker.broker.stats.queue.dropped === 1, 'the event is dropped');
  assert.equal(broker.broker.stats.queue.depth, 0);
  const next = await backendFor(t, broker.tcpPort);
  // Another client joining through the new backend proves it is in the pool.
  await pyJoin(t, broker, [next], 'bob');
  client.ws.send('kept');
  const line = await next.next('new_message');
  assert.equal(line.params.message, 'kept');
  assert.equal(next.lines.pending.filter((l) => l.params.message === 'dropped').length, 0);
});

test('queue: when full, the oldest event is dropped (queue-size 3, 5 events: the newest 3 arrive in order)', async (t) => {
  const { broker, client } = await clientWithoutBackend(t, { queueSize: 3 });
  for (let i = 1; i <= 5; i++) client.ws.send(`m${i}`);
  await waitUntil(() => broker.broker.stats.queue.dropped === 2, 'two events are dropped');
  assert.equal(broker.broker.stats.queue.depth, 3);
  const next = await backendFor(t, broker.tcpPort);
  client.ws.send('m6');
  for (const expected of ['m3', 'm4', 'm5', 'm6']) {
    const line = await nextLine(next);
    assert.equal(line.action, 'new_message');
    assert.equal(line.params.message, expected);
  }
});

test('a connection_request is never queued: with no backend the upgrade gets HTTP 503 with Retry-After', async (t) => {
  const broker = await brokerFor(t);
  const refused = await openClient(broker.url('/nobody?x=1')).then(
    () => assert.fail('the upgrade was accepted with no backend'),
    (err: { status?: number; headers?: Record<string, string> }) => err,
  );
  assert.equal(refused.status, 503);
  assert.ok(refused.headers?.['retry-after'], 'no Retry-After header');
  // The backend that connects next gets neither the request nor a report of the refusal
  // (refusals are reported only to a live backend): its first line is the next client's request.
  const next = await backendFor(t, broker.tcpPort);
  assert.equal(broker.broker.stats.errors.no_backend, 1);
  const { request } = await pyJoin(t, broker, [next], 'later');
  assert.equal(request.params.url, '/room');
  assert.equal(next.lines.pending.filter((l) => l.action === 'connection_request').length, 0);
});
