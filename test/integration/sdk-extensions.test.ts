/**
 * The SDK's extension methods against the real broker: room membership,
 * client disconnects, exclude, binary both ways, acks and room_info, as the
 * protocol extensions' wire format specifies them.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { StrandsBackend, type ClientContext } from '../../src/sdk';
import type { TestBroker } from '../helpers/broker';
import { AsyncQueue } from '../helpers/async-queue';
import { brokerFor, clientFor, waitUntil } from '../helpers/fixtures';
import { openClient, type TestClient } from '../helpers/ws-client';

interface Setup {
  broker: TestBroker;
  backend: StrandsBackend;
  messages: AsyncQueue<{ text: string; ctx: ClientContext }>;
  /** Each client as it connects: its client_id from `?client_id=`, its room the url path. */
  join(clientId: string, room: string): Promise<TestClient>;
}

/** A broker, and an SDK backend admitted by it that accepts every client; closed when the test ends. */
async function setup(t: TestContext): Promise<Setup> {
  const broker = await brokerFor(t);
  const backend = new StrandsBackend({ port: broker.tcpPort, reconnect: false });
  t.after(() => backend.close());
  backend.onConnectionRequest((req) => ({ accepted: true, client_id: req.queryParam('client_id'), room_id: req.url }));
  const messages = new AsyncQueue<{ text: string; ctx: ClientContext }>();
  backend.onMessage((text, ctx) => messages.push({ text, ctx }));
  await backend.connect();
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the SDK backend is admitted');
  return { broker, backend, messages, join: (clientId, room) => clientFor(t, broker.url(`${room}?client_id=${encodeURIComponent(clientId)}`)) };
}

/** Asserts `client`'s next message is `marker`, sent to it alone: whatever was meant to skip it did. */
async function nothingElseFor(backend: StrandsBackend, clientId: string, client: TestClient): Promise<void> {
  backend.sendToConnection(clientId, `marker for ${clientId}`);
  assert.equal(await client.nextMessage(), `marker for ${clientId}`);
}

test('joinRoom and leaveRoom move every socket of a client_id, acked with the sockets affected; context.room_id stays the first room', async (t) => {
  const { backend, messages, join } = await setup(t);
  const alice = await join('alice', '/a');
  const bob = await join('bob', '/b');
  const bob2 = await join('bob', '/b');
  assert.deepEqual(await backend.joinRoom('bob', '/a', { ack: true }), { ok: true, delivered: 2 });
  backend.sendToRoom('/a', 'to a');
  assert.deepEqual([await alice.nextMessage(), await bob.nextMessage(), await bob2.nextMessage()], ['to a', 'to a', 'to a']);

  assert.deepEqual(await backend.leaveRoom('bob', '/a', { ack: true }), { ok: true, delivered: 2 });
  assert.deepEqual(await backend.sendToRoom('/a', 'to a again', { ack: true }), { ok: true, delivered: 1 });
  assert.equal(await alice.nextMessage(), 'to a again');
  await nothingElseFor(backend, 'bob', bob);

  bob.ws.send('still from b');
  const { text, ctx } = await messages.next();
  assert.equal(text, 'still from b');
  assert.equal(ctx.room_id, '/b');

  // Unacked, the same lines work.
  backend.joinRoom('alice', '/b');
  assert.deepEqual(await backend.broadcast('sync', { ack: true }), { ok: true, delivered: 3 });
  assert.equal(await alice.nextMessage(), 'sync');
  backend.sendToRoom('/b', 'to b');
  assert.equal(await alice.nextMessage(), 'to b');
});

test('joinRoom past the rooms a socket may be in is refused in the ack, with no separate error event', async (t) => {
  const { backend, join } = await setup(t);
  await join('carol', '/start');
  const errors: string[] = [];
  backend.onError((error) => errors.push(error));
  // 65 joins: whether or not the room it connected with counts, the default cap of 64 is passed by the last.
  const results = await Promise.all(Array.from({ length: 65 }, (_, i) => backend.joinRoom('carol', `/r${i}`, { ack: true })));
  for (const result of results.slice(0, 63)) assert.deepEqual(result, { ok: true, delivered: 1 });
  const last = results[64];
  assert.equal(last?.ok, false);
  assert.equal(typeof last?.error, 'string');
  // Answers come in order on the link: an error event for the refused line would have come before this one's.
  await backend.broadcast('after', { ack: true });
  assert.deepEqual(errors, []);
});

test('disconnectClient closes every socket of the client_id with the code and reason; each gets its disconnected event', async (t) => {
  const { backend, join } = await setup(t);
  const gone = new AsyncQueue<string>();
  backend.onDisconnect((ctx) => gone.push(ctx.client_id));
  const first = await join('dave', '/x');
  const second = await join('dave', '/y');
  const other = await join('erin', '/x');
  assert.deepEqual(await backend.disconnectClient('dave', { code: 4001, reason: 'bye ✓', ack: true }), { ok: true, delivered: 2 });
  assert.deepEqual(await first.closed, { code: 4001, reason: 'bye ✓' });
  assert.deepEqual(await second.closed, { code: 4001, reason: 'bye ✓' });
  assert.deepEqual([await gone.next(), await gone.next()], ['dave', 'dave']);
  await nothingElseFor(backend, 'erin', other);

  backend.disconnectClient('erin');
  assert.equal((await other.closed).code, 1000);
});

test('exclude keeps a room send or a broadcast from the client_ids named', async (t) => {
  const { backend, join } = await setup(t);
  const alice = await join('alice', '/room');
  const bob = await join('bob', '/room');
  const carol = await join('carol', '/elsewhere');
  assert.deepEqual(await backend.sendToRoom('/room', 'not alice', { exclude: 'alice', ack: true }), { ok: true, delivered: 1 });
  assert.equal(await bob.nextMessage(), 'not alice');
  await nothingElseFor(backend, 'alice', alice);

  backend.broadcast('only carol', { exclude: ['alice', 'bob'] });
  assert.equal(await carol.nextMessage(), 'only carol');
  await nothingElseFor(backend, 'alice', alice);
  await nothingElseFor(backend, 'bob', bob);
});

test('binary frames reach onBinaryMessage as bytes, and bytes sent reach clients as binary frames', async (t) => {
  const { broker, backend } = await setup(t);
  const received = new AsyncQueue<{ data: Buffer; ctx: ClientContext }>();
  backend.onBinaryMessage((data, ctx) => received.push({ data, ctx }));
  const client = await openClient(broker.url('/bin?client_id=bin'));
  t.after(() => client.ws.terminate());
  const frames = new AsyncQueue<{ data: Buffer; isBinary: boolean }>();
  client.ws.on('message', (data, isBinary) => frames.push({ data: data as Buffer, isBinary }));

  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0a]);
  client.ws.send(bytes);
  const got = await received.next();
  assert.deepEqual([...got.data], [...bytes]);
  assert.equal(got.ctx.client_id, 'bin');

  backend.sendToConnection('bin', bytes);
  backend.sendToRoom('/bin', new Uint8Array([7, 8, 9]).subarray(1));
  backend.broadcast('text stays text');
  const frame1 = await frames.next();
  const frame2 = await frames.next();
  const frame3 = await frames.next();
  assert.deepEqual([frame1.isBinary, [...frame1.data]], [true, [...bytes]]);
  assert.deepEqual([frame2.isBinary, [...frame2.data]], [true, [8, 9]]);
  assert.deepEqual([frame3.isBinary, frame3.data.toString()], [false, 'text stays text']);
});

test('roomInfo: distinct client_ids, sorted; an empty room; a room of more than one page followed to the end', { timeout: 60_000 }, async (t) => {
  const { backend, join } = await setup(t);
  await join('zed', '/small');
  await join('amy', '/small');
  await join('amy', '/small');
  assert.deepEqual(await backend.roomInfo('/small'), { room_id: '/small', count: 2, client_ids: ['amy', 'zed'] });
  assert.deepEqual(await backend.roomInfo('/nobody'), { room_id: '/nobody', count: 0, client_ids: [] });

  const ids = Array.from({ length: 1005 }, (_, i) => `p${String(i).padStart(4, '0')}`);
  for (let i = 0; i < ids.length; i += 100) await Promise.all(ids.slice(i, i + 100).map((id) => join(id, '/big')));
  const first = await backend.roomInfoPage('/big');
  assert.equal(first.count, ids.length);
  assert.equal(first.client_ids.length, 1000);
  assert.equal(typeof first.next, 'string');
  const info = await backend.roomInfo('/big');
  assert.deepEqual(info, { room_id: '/big', count: ids.length, client_ids: ids });
});

test('an ack for a send that reached no socket says delivered: 0', async (t) => {
  const { backend } = await setup(t);
  const result = await backend.sendToConnection('nobody', 'x', { ack: true });
  assert.equal(result.delivered, 0);
});
