/**
 * The SDK's methods for the protocol extensions, against a fake broker that
 * checks the exact lines and answers as the extensions' wire format says:
 * room membership, client disconnects, exclude, binary both ways, acked sends
 * and room_info.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { StrandsBackend, StrandsRequestError, type AckResult, type ClientContext } from '../../src/sdk';
import { AsyncQueue } from '../helpers/async-queue';
import { connectedBackend, type Peer } from '../helpers/sdk-fake-broker';

const T = { timeout: 10_000 };
const ctx: ClientContext = { client_id: 'u1', room_id: '/ws', metadata: {} };

/** The next line exactly as written, and its request_id. */
async function nextLine(peer: Peer): Promise<{ id: string; line: string }> {
  const line = await peer.lines.next();
  return { id: (JSON.parse(line) as { request_id: string }).request_id, line };
}

/** Asserts the next lines are `expected`, each given its own request_id; returns the ids. */
async function expectLines(peer: Peer, expected: ((id: string) => string)[]): Promise<string[]> {
  const ids: string[] = [];
  for (const make of expected) {
    const { id, line } = await nextLine(peer);
    assert.equal(line, make(id));
    ids.push(id);
  }
  assert.equal(new Set(ids).size, ids.length, 'request_ids are distinct');
  return ids;
}

function answer(peer: Peer, id: string, params: object): void {
  peer.send({ request_id: id, action: 'response', params });
}

/** A promise's outcome, so a test can assert a rejection's fields. */
function settled<V>(promise: Promise<V>): Promise<{ value?: V; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

function assertRequestError(error: unknown, code: string): void {
  assert.ok(error instanceof StrandsRequestError, `a StrandsRequestError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
}

test('room membership and client disconnects write the exact lines, synchronously', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  assert.equal(backend.joinRoom('u1', 'lobby'), undefined);
  assert.equal(backend.leaveRoom('u1', 'lobby'), undefined);
  assert.equal(backend.disconnectClient('u1'), undefined);
  backend.disconnectClient('u"2', { code: 4001, reason: 'kicked ✓' });
  backend.disconnectClient('u3', { code: 1000, reason: '' });
  assert.equal(backend.pendingRequests, 0);
  await expectLines(peer, [
    (id) => `{"request_id":"${id}","action":"join_room","params":{"conn_id":"u1","room_id":"lobby"}}`,
    (id) => `{"request_id":"${id}","action":"leave_room","params":{"conn_id":"u1","room_id":"lobby"}}`,
    (id) => `{"request_id":"${id}","action":"disconnect","params":{"conn_id":"u1"}}`,
    (id) => `{"request_id":"${id}","action":"disconnect","params":{"conn_id":"u\\"2","code":4001,"reason":"kicked ✓"}}`,
    (id) => `{"request_id":"${id}","action":"disconnect","params":{"conn_id":"u3","code":1000,"reason":""}}`,
  ]);
});

test('exclude and bytes on sends: exclude as given, bytes as standard base64 with "binary": true', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  backend.sendToRoom('lobby', 'hi', { exclude: 'u1' });
  backend.broadcast('all', { exclude: ['u1', 'u2'] });
  backend.sendToRoom('lobby', Buffer.from([0, 1, 2, 255]));
  // A view into a larger buffer: only its own bytes are sent.
  const backing = new Uint8Array([9, 9, 104, 105, 9]);
  backend.sendToConnection('u1', backing.subarray(2, 4));
  backend.broadcast(new Uint8Array(0), { exclude: [] });
  await expectLines(peer, [
    (id) => `{"request_id":"${id}","action":"message_to_room","params":{"room_id":"lobby","message":"hi","exclude":"u1"}}`,
    (id) => `{"request_id":"${id}","action":"broadcast","params":{"message":"all","exclude":["u1","u2"]}}`,
    (id) => `{"request_id":"${id}","action":"message_to_room","params":{"room_id":"lobby","message":"AAEC/w==","binary":true}}`,
    (id) => `{"request_id":"${id}","action":"message_to_connection","params":{"conn_id":"u1","message":"aGk=","binary":true}}`,
    (id) => `{"request_id":"${id}","action":"broadcast","params":{"message":"","binary":true,"exclude":[]}}`,
  ]);
});

test('acked sends put "ack": true beside params and resolve with the broker\'s answer', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const calls: [Promise<AckResult>, (id: string) => string][] = [
    [backend.sendToRoom('lobby', 'hi', { ack: true, exclude: ['u2'] }), (id) => `{"request_id":"${id}","action":"message_to_room","params":{"room_id":"lobby","message":"hi","exclude":["u2"]},"ack":true}`],
    [backend.sendToConnection('u1', Buffer.from('hi'), { ack: true }), (id) => `{"request_id":"${id}","action":"message_to_connection","params":{"conn_id":"u1","message":"aGk=","binary":true},"ack":true}`],
    [backend.broadcast('all', { ack: true }), (id) => `{"request_id":"${id}","action":"broadcast","params":{"message":"all"},"ack":true}`],
    [backend.joinRoom('u1', 'r', { ack: true }), (id) => `{"request_id":"${id}","action":"join_room","params":{"conn_id":"u1","room_id":"r"},"ack":true}`],
    [backend.leaveRoom('u1', 'r', { ack: true }), (id) => `{"request_id":"${id}","action":"leave_room","params":{"conn_id":"u1","room_id":"r"},"ack":true}`],
    [backend.disconnectClient('u1', { ack: true, code: 4000 }), (id) => `{"request_id":"${id}","action":"disconnect","params":{"conn_id":"u1","code":4000},"ack":true}`],
  ];
  assert.equal(backend.pendingRequests, calls.length);
  const ids = await expectLines(
    peer,
    calls.map(([, line]) => line),
  );
  // Answers in another order, one for a request nobody made, and one refusal.
  const unknown = once(backend, 'response');
  answer(peer, 'not-ours', { ok: true, delivered: 9 });
  assert.deepEqual(await unknown, ['not-ours', { ok: true, delivered: 9 }]);
  [...ids].reverse().forEach((id, i) => answer(peer, id, i === 0 ? { ok: false, delivered: 0, error: 'no client u1' } : { ok: true, delivered: i }));
  const results = await Promise.all(calls.map(([promise]) => promise));
  assert.deepEqual(results, [
    { ok: true, delivered: 5 },
    { ok: true, delivered: 4 },
    { ok: true, delivered: 3 },
    { ok: true, delivered: 2 },
    { ok: true, delivered: 1 },
    { ok: false, delivered: 0, error: 'no client u1' },
  ]);
  assert.equal(backend.pendingRequests, 0);
});

test('an acked send rejects on its timeout, and a late answer is ignored', T, async (t) => {
  const { backend, peer } = await connectedBackend(t, { requestTimeoutMs: 300 });
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const own = settled(backend.broadcast('x', { ack: true, timeoutMs: 200 }));
  const byDefault = settled(backend.joinRoom('u1', 'r', { ack: true }));
  const [{ id }] = [await nextLine(peer), await nextLine(peer)];
  t.mock.timers.tick(199);
  assert.equal(backend.pendingRequests, 2);
  t.mock.timers.tick(1);
  assertRequestError((await own).error, 'timeout');
  assert.equal(backend.pendingRequests, 1);
  t.mock.timers.tick(100);
  assertRequestError((await byDefault).error, 'timeout');
  assert.equal(backend.pendingRequests, 0);

  const late = once(backend, 'response');
  answer(peer, id, { ok: true, delivered: 1 });
  assert.deepEqual(await late, [id, { ok: true, delivered: 1 }]);
});

test('acked requests reject when the link they went out on closes; those queued while down wait through failed attempts for the next link', T, async (t) => {
  const { backend, broker, peer } = await connectedBackend(t, { minBackoffMs: 1, maxBackoffMs: 1 });
  const sent = settled(backend.joinRoom('u1', 'r', { ack: true }));
  const info = settled(backend.roomInfo('r'));
  await nextLine(peer);
  await nextLine(peer);
  peer.kill();
  assertRequestError((await sent).error, 'disconnected');
  assertRequestError((await info).error, 'disconnected');

  // The link is down (its retry is a timer, and this runs before timers do), and attempts fail for a while.
  assert.equal(backend.connected, false);
  broker.stopListening();
  const queued = backend.leaveRoom('u1', 'r', { ack: true });
  const refused = await once(backend, 'reconnecting');
  assert.equal((refused[2] as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  assert.equal(backend.pendingRequests, 1, 'a failed attempt sent nothing, so fails nothing');
  await broker.listen(broker.port);
  const next = await broker.peers.next();
  const { id, line } = await nextLine(next);
  assert.equal(line, `{"request_id":"${id}","action":"leave_room","params":{"conn_id":"u1","room_id":"r"},"ack":true}`);
  answer(next, id, { ok: true, delivered: 2 });
  assert.deepEqual(await queued, { ok: true, delivered: 2 });
});

test('close() rejects what waits with code closed, and so does a link closing with reconnect off', T, async (t) => {
  const first = await connectedBackend(t);
  const waiting = settled(first.backend.broadcast('x', { ack: true }));
  await nextLine(first.peer);
  await first.backend.close();
  assertRequestError((await waiting).error, 'closed');
  assertRequestError((await settled(first.backend.broadcast('y', { ack: true }))).error, 'closed');

  const second = await connectedBackend(t, { reconnect: false });
  const sent = settled(second.backend.broadcast('x', { ack: true }));
  second.peer.kill();
  assertRequestError((await sent).error, 'closed');
});

test('at most maxPendingRequests answers are awaited: beyond, a request is refused and not sent', T, async (t) => {
  const { backend, peer } = await connectedBackend(t, { maxPendingRequests: 2 });
  const a = backend.broadcast('a', { ack: true });
  const b = backend.roomInfoPage('r');
  assertRequestError((await settled(backend.broadcast('c', { ack: true }))).error, 'too_many_pending');
  assertRequestError((await settled(backend.roomInfo('r'))).error, 'too_many_pending');
  backend.broadcast('unacked sends still go');
  const [idA, idB] = await expectLines(peer, [
    (id) => `{"request_id":"${id}","action":"broadcast","params":{"message":"a"},"ack":true}`,
    (id) => `{"request_id":"${id}","action":"room_info","params":{"room_id":"r"}}`,
    (id) => `{"request_id":"${id}","action":"broadcast","params":{"message":"unacked sends still go"}}`,
  ]);
  answer(peer, idA as string, { ok: true, delivered: 1 });
  answer(peer, idB as string, { room_id: 'r', count: 0, client_ids: [] });
  assert.deepEqual(await a, { ok: true, delivered: 1 });
  assert.deepEqual(await b, { room_id: 'r', count: 0, client_ids: [] });
  const d = backend.broadcast('d', { ack: true });
  const { id } = await nextLine(peer);
  answer(peer, id, { ok: true, delivered: 0 });
  assert.deepEqual(await d, { ok: true, delivered: 0 });
});

test('an acked send that does not fit in what the backend holds is refused with code dropped', async () => {
  const backend = new StrandsBackend({ port: 1 });
  const result = await settled(backend.broadcast('x'.repeat(9 * 1024 * 1024), { ack: true }));
  assertRequestError(result.error, 'dropped');
  assert.equal(backend.droppedSends, 1);
  assert.equal(backend.pendingRequests, 0);
  await backend.close();
});

test('roomInfo follows the pages, sending each next back as cursor; roomInfoPage returns one page with its next', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const info = backend.roomInfo('lobby');
  const [first] = await expectLines(peer, [(id) => `{"request_id":"${id}","action":"room_info","params":{"room_id":"lobby"}}`]);
  answer(peer, first as string, { room_id: 'lobby', count: 3, client_ids: ['a', 'b'], next: 'b', nodes: 2, nodes_total: 3 });
  const [second] = await expectLines(peer, [(id) => `{"request_id":"${id}","action":"room_info","params":{"room_id":"lobby","cursor":"b"}}`]);
  answer(peer, second as string, { room_id: 'lobby', count: 4, client_ids: ['c'], nodes: 2, nodes_total: 3 });
  assert.deepEqual(await info, { room_id: 'lobby', count: 4, client_ids: ['a', 'b', 'c'], nodes: 2, nodes_total: 3 });

  const page = backend.roomInfoPage('lobby', { cursor: 'a' });
  const [third] = await expectLines(peer, [(id) => `{"request_id":"${id}","action":"room_info","params":{"room_id":"lobby","cursor":"a"}}`]);
  answer(peer, third as string, { room_id: 'lobby', count: 3, client_ids: ['b'], next: 'b' });
  assert.deepEqual(await page, { room_id: 'lobby', count: 3, client_ids: ['b'], next: 'b' });
});

test('roomInfo rejects a refusal, an answer without the documented fields, a cursor that does not move, and a timeout', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const answers: [object[], string][] = [
    [[{ ok: false, delivered: 0, error: 'room_id must be a string' }], 'refused'],
    [[{ room_id: 'r', count: 1, client_ids: 'a' }], 'bad_response'],
    [[{ room_id: 'r', count: '1', client_ids: ['a'] }], 'bad_response'],
    [[{ room_id: 'r', count: 1, client_ids: [1] }], 'bad_response'],
    [[{ room_id: 'r', count: 1, client_ids: ['a'], next: 5 }], 'bad_response'],
    [
      [
        { room_id: 'r', count: 3, client_ids: ['b'], next: 'b' },
        { room_id: 'r', count: 3, client_ids: ['a'], next: 'a' },
      ],
      'bad_response',
    ],
    [
      [
        { room_id: 'r', count: 3, client_ids: ['b'], next: 'b' },
        { room_id: 'r', count: 3, client_ids: [], next: 'c' },
      ],
      'bad_response',
    ],
  ];
  for (const [pages, code] of answers) {
    const info = settled(backend.roomInfo('r'));
    for (const params of pages) answer(peer, (await nextLine(peer)).id, params);
    assertRequestError((await info).error, code);
  }
  assert.equal(backend.pendingRequests, 0);

  t.mock.timers.enable({ apis: ['setTimeout'] });
  const info = settled(backend.roomInfo('r', { timeoutMs: 50 }));
  await nextLine(peer);
  t.mock.timers.tick(50);
  assertRequestError((await info).error, 'timeout');
});

test('binary messages reach onBinaryMessage as bytes; without it, onMessage gets them decoded as UTF-8', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const texts = new AsyncQueue<string>();
  const bytes = new AsyncQueue<Buffer>();
  backend.onMessage((message, c) => texts.push(`${message} from ${c.client_id}`));
  peer.send({ request_id: '1', action: 'new_message', params: { message: Buffer.from('héllo').toString('base64'), binary: true, context: ctx } });
  assert.equal(await texts.next(), 'héllo from u1');

  backend.onBinaryMessage((data, c) => {
    assert.deepEqual(c, ctx);
    bytes.push(data);
  });
  peer.send({ request_id: '2', action: 'new_message', params: { message: 'AAEC/w==', binary: true, context: ctx } });
  peer.send({ request_id: '3', action: 'new_message', params: { message: 'AAEC/w', binary: true, context: ctx } }); // padding is optional
  peer.send({ request_id: '4', action: 'new_message', params: { message: 'AAEC/w==', context: ctx } }); // no binary key: text
  const data = await bytes.next();
  assert.ok(Buffer.isBuffer(data));
  assert.deepEqual([...data], [0, 1, 2, 255]);
  assert.deepEqual([...(await bytes.next())], [0, 1, 2, 255]);
  assert.equal(await texts.next(), 'AAEC/w== from u1');
});

test('arguments the protocol refuses throw at once and send nothing', T, async (t) => {
  const { backend, peer } = await connectedBackend(t);
  const tooMany = Array.from({ length: 1001 }, (_, i) => `c${i}`);
  assert.throws(() => backend.sendToRoom('r', 'x', { exclude: tooMany }), RangeError);
  assert.throws(() => backend.broadcast('x', { exclude: [1 as unknown as string] }), RangeError);
  assert.throws(() => backend.broadcast('x', { exclude: 7 as unknown as string }), RangeError);
  for (const code of [999, 1001, 3999, 5000, 4000.5, Number.NaN]) assert.throws(() => backend.disconnectClient('u1', { code }), RangeError, `code ${code}`);
  assert.throws(() => backend.disconnectClient('u1', { reason: 'é'.repeat(62) }), RangeError); // 124 bytes
  assert.throws(() => backend.broadcast(42 as unknown as string), TypeError);
  assert.throws(() => backend.sendToConnection('u1', { text: 'x' } as unknown as string), TypeError);
  const notAString = undefined as unknown as string;
  assert.throws(() => backend.sendToRoom(notAString, 'x'), /roomId must be a string, got undefined/);
  assert.throws(() => backend.sendToConnection(notAString, 'x'), /clientId must be a string/);
  assert.throws(() => backend.joinRoom('u1', notAString), /roomId must be a string/);
  assert.throws(() => backend.leaveRoom(notAString, 'r'), /clientId must be a string/);
  assert.throws(() => backend.disconnectClient(notAString), /clientId must be a string/);
  assert.throws(() => backend.roomInfoPage('r', { cursor: 5 as unknown as string }), /cursor must be a string/);
  await assert.rejects(backend.roomInfo(notAString), /roomId must be a string/);
  assert.equal(backend.pendingRequests, 0);
  await assert.rejects(backend.broadcast('x', { ack: true, timeoutMs: 0 }), RangeError);

  // At the limits: accepted.
  backend.sendToRoom('r', 'x', { exclude: tooMany.slice(0, 1000) });
  backend.disconnectClient('u1', { code: 4999, reason: 'é'.repeat(61) + 'a' });
  const lines = [await peer.next(), await peer.next()];
  assert.equal(lines[0].params.exclude.length, 1000);
  assert.deepEqual(lines[1].params, { conn_id: 'u1', code: 4999, reason: 'é'.repeat(61) + 'a' });
  backend.broadcast('marker');
  assert.deepEqual((await peer.next()).params, { message: 'marker' }, 'nothing else was sent');
});
