/**
 * Bad input from either side. Each case shows
 * the documented reaction (docs/protocol.md, "The error event": a bad backend line is skipped
 * and its backend gets an `error` event naming the problem; the link stays up)
 * and that everybody else is unaffected: a second backend and a bystander
 * client keep exchanging messages during and after (helpers/bystanders.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { StrandsBackend } from '../../src/sdk/backend';
import { arena } from '../helpers/bystanders';
import { within } from '../helpers/deadline';
import { brokerFor, takeAll, takeOne, waitAcross, waitUntil } from '../helpers/fixtures';
import { rawUpgrade } from '../helpers/raw-upgrade';
import { clientFrame, nextServerClose, Opcode } from '../helpers/ws-frames';
import { openClient } from '../helpers/ws-client';

const line = (value: unknown): string => JSON.stringify(value) + '\n';

describe('bad lines from a backend: an error event to that backend, the link stays up, nobody else notices', () => {
  const cases: { name: string; bytes: string; errors: RegExp[]; requestId?: string; kind: string }[] = [
    { name: 'invalid JSON', bytes: '{"request_id":"j1","action":"broadcast",\n', errors: [/^invalid JSON$/], kind: 'invalid_json' },
    {
      name: 'JSON that is not an object: [1], "x", null, 42',
      bytes: '[1]\n"x"\nnull\n42\n',
      errors: Array(4).fill(/^a line must be a JSON object$/) as RegExp[],
      kind: 'not_an_object',
    },
    { name: 'an unknown action', bytes: line({ request_id: 'u1', action: 'frobnicate', params: {} }), errors: [/^unknown action "frobnicate" \(request_id u1\)$/], requestId: 'u1', kind: 'unknown_action' },
    { name: 'no action at all', bytes: line({ request_id: 'u2', params: { message: 'x' } }), errors: [/^unknown action undefined \(request_id u2\)$/], requestId: 'u2', kind: 'unknown_action' },
    { name: 'missing params', bytes: line({ request_id: 'p1', action: 'message_to_room' }), errors: [/^message_to_room: params\.room_id must be a string \(request_id p1\)$/], requestId: 'p1', kind: 'invalid_params' },
    { name: 'message: 5', bytes: line({ request_id: 't1', action: 'broadcast', params: { message: 5 } }), errors: [/^broadcast: params\.message must be a string \(request_id t1\)$/], requestId: 't1', kind: 'invalid_params' },
    {
      name: 'conn_id: null',
      bytes: line({ request_id: 't2', action: 'message_to_connection', params: { conn_id: null, message: 'x' } }),
      errors: [/^message_to_connection: params\.conn_id must be a string \(request_id t2\)$/],
      requestId: 't2',
      kind: 'invalid_params',
    },
    { name: 'params: []', bytes: line({ request_id: 't3', action: 'broadcast', params: [] }), errors: [/^broadcast: params must be an object \(request_id t3\)$/], requestId: 't3', kind: 'invalid_params' },
    { name: 'params: null', bytes: line({ request_id: 't4', action: 'broadcast', params: null }), errors: [/^broadcast: params must be an object \(request_id t4\)$/], requestId: 't4', kind: 'invalid_params' },
    { name: 'a request_id that is not a string', bytes: line({ request_id: 7, action: 'frobnicate', params: {} }), errors: [/^unknown action "frobnicate"$/], kind: 'unknown_action' },
    { name: 'a response for an unknown request_id', bytes: line({ request_id: 'nope', action: 'response', params: { accepted: true } }), errors: [/^response for an unknown or expired request_id \(request_id nope\)$/], requestId: 'nope', kind: 'unknown_request' },
    { name: 'a response without a request_id', bytes: line({ action: 'response', params: { accepted: true } }), errors: [/^response: request_id must be a string$/], kind: 'invalid_params' },
  ];

  for (const c of cases) {
    test(c.name, async (t) => {
      const a = await arena(t);
      await a.roundTrip('before');
      a.bad.sendRaw(c.bytes);
      for (const pattern of c.errors) {
        const error = await a.expectError(a.bad, pattern);
        if (c.requestId !== undefined) {
          assert.ok(String(error.params.error).includes(`(request_id ${c.requestId})`), 'the error text names the offending request_id');
          assert.notEqual(error.request_id, c.requestId, 'the event has a request_id of its own, unique in the run');
        }
      }
      await a.assertStillObeyed(a.bad, c.name);
      await a.roundTrip('after');
      assert.equal(a.broker.broker.stats.backends.connected, 2, 'both backends are still connected');
      assert.equal((a.broker.broker.stats.errors as Record<string, number>)[c.kind], c.errors.length, `counted as ${c.kind}`);
      a.assertNoError(a.good, 'the other backend was told nothing');
      assert.deepEqual(a.bystander.messages.pending, [], 'the bystander got nothing else');
    });
  }

  test('an oversized line (100 KiB, --max-line 4096) is discarded with an error naming its size; the next line works', async (t) => {
    const a = await arena(t, { maxLine: 4096 });
    const head = '{"request_id":"big","action":"broadcast","params":{"message":"';
    const tail = '"}}';
    const big = head + 'x'.repeat(100 * 1024 - head.length - tail.length) + tail;
    assert.equal(big.length, 102_400);
    // Split across writes, and followed in the same write by a valid line.
    a.bad.sendRaw(big.slice(0, 50_000));
    await a.roundTrip('during');
    a.bad.sendRaw(big.slice(50_000) + '\n' + line({ request_id: 'next', action: 'message_to_connection', params: { conn_id: 'bystander', message: 'right after' } }));
    await a.expectError(a.bad, /^line of 102400 bytes exceeds --max-line 4096; discarded$/);
    assert.equal(await a.bystander.messages.next((m) => m === 'right after'), 'right after');
    await a.assertStillObeyed(a.bad, 'oversized');
    await a.roundTrip('after');
    assert.deepEqual(a.bystander.messages.pending, [], 'the oversized broadcast was not delivered');
    assert.equal(a.broker.broker.stats.errors.oversized_line, 1);
    a.assertNoError(a.good, 'the other backend was told nothing');
  });

  test('invalid UTF-8 inside a JSON string: no crash, no error; each bad byte is decoded as U+FFFD and the message is delivered', async (t) => {
    const a = await arena(t);
    const bytes = Buffer.concat([
      Buffer.from('{"request_id":"utf","action":"message_to_connection","params":{"conn_id":"bystander","message":"a'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('b'),
      Buffer.from([0xc3]), // a truncated two-byte sequence
      Buffer.from('c"}}\n'),
    ]);
    a.bad.sendRaw(bytes);
    assert.equal(await a.bystander.nextMessage(), 'a\uFFFD\uFFFDb\uFFFDc');
    await a.assertStillObeyed(a.bad, 'utf8');
    await a.roundTrip('after');
    a.assertNoError(a.bad, 'invalid UTF-8 in a string is not an error: it is replaced');
  });

  test('a flood of 50,000 lines in one write (a tenth of them invalid) is handled in full and in order, and the broker stays responsive', async (t) => {
    const a = await arena(t);
    const { client: sink } = await a.join('sink');
    const TOTAL = 50_000;
    const valid: string[] = [];
    let text = '';
    for (let i = 0; i < TOTAL; i++) {
      if (i % 10 === 9) {
        text += '{"flood":\n';
      } else {
        valid.push(`f${i}`);
        text += `{"request_id":"r${i}","action":"message_to_connection","params":{"conn_id":"sink","message":"f${i}"}}\n`;
      }
    }
    let received = 0;
    let outOfOrder: string | undefined;
    const allReceived = new Promise<void>((resolve) => {
      sink.ws.on('message', (data) => {
        const message = data.toString();
        if (outOfOrder === undefined && message !== valid[received]) outOfOrder = `message ${received} was ${message}, expected ${valid[received]}`;
        if (++received === valid.length) resolve();
      });
    });
    const startedAt = Date.now();
    a.bad.sendRaw(text);
    // The bystander's ping-pong completes while the broker works through the flood.
    await a.roundTrip('during-flood', 20_000);
    const pingDone = Date.now() - startedAt;
    await allReceived;
    assert.equal(outOfOrder, undefined);
    await waitAcross([a.bad], TOTAL / 10, (l) => l.action === 'error', 20_000);
    assert.equal(takeAll(a.bad, (l) => l.action === 'error' && l.params.error === 'invalid JSON').length, TOTAL / 10);
    t.diagnostic(`flood handled in ${Date.now() - startedAt} ms; bystander round trip done after ${pingDone} ms`);
    await a.assertStillObeyed(a.bad, 'flood');
    await a.roundTrip('after-flood');
    a.assertNoError(a.good, 'the other backend was told nothing');
  });
});

describe('bad input from a client: that client alone pays', () => {
  test('a frame over --max-payload: the client is disconnected, its message never reaches a backend, others unaffected', async (t) => {
    const a = await arena(t, { maxPayload: 1024 });
    const { client } = await a.join('big');
    client.ws.send('y'.repeat(1024));
    await takeOne(a.backends, (l) => l.action === 'new_message' && l.params.message.length === 1024);
    client.ws.send('x'.repeat(2000));
    await client.closed;
    await takeOne(a.backends, (l) => l.action === 'disconnected' && l.params.context.client_id === 'big');
    assert.deepEqual(a.backends.flatMap((b) => takeAll(b, (l) => l.action === 'new_message')), [], 'the big message was not forwarded');
    await a.roundTrip('after');
    assert.equal(a.broker.broker.stats.connections.open, 1);
  });

  test('a frame over --max-payload is closed with 1009 (README, --max-payload) and counted as too_big', async (t) => {
    const a = await arena(t, { maxPayload: 1024 });
    const { client } = await a.join('big');
    client.ws.send('x'.repeat(2000));
    const { code } = await client.closed;
    await takeOne(a.backends, (l) => l.action === 'disconnected' && l.params.context.client_id === 'big');
    const { closedBy } = a.broker.broker.stats.connections;
    assert.equal(code, 1009, 'the client is told why with close code 1009');
    assert.equal(closedBy.too_big, 1, 'counted as too_big, not as a backpressure drop');
    assert.equal(closedBy.abnormal, 0);
  });

  test('binary frames reach the backend as base64 with binary: true, whatever their bytes', async (t) => {
    const a = await arena(t);
    const { client } = await a.join('bin');
    const bytes = Buffer.from([0x68, 0x69, 0xff, 0x00, 0x80]);
    client.ws.send(bytes, { binary: true });
    const line = (await takeOne(a.backends, (l) => l.action === 'new_message' && l.params.context.client_id === 'bin'))[0];
    assert.equal(line.params.binary, true);
    assert.deepEqual(Buffer.from(String(line.params.message), 'base64'), bytes);
    assert.deepEqual(Object.keys(line.params).sort(), ['binary', 'context', 'message']);
    await a.roundTrip('after');
  });

  test('invalid UTF-8 in a text frame: uWS fails the connection (TCP closed, no close frame), nothing is forwarded, others unaffected', async (t) => {
    const a = await arena(t);
    // `ws` would refuse to receive such a frame but sends what it is given; a hand-built frame makes the point exactly.
    const upgraded = await rawUpgrade(a.broker.wsPort, '/lobby?client_id=garbled');
    t.after(() => upgraded.socket.destroy());
    assert.equal(upgraded.status, 101);
    await takeOne(a.backends, (l) => l.action === 'new_connection' && l.params.context.client_id === 'garbled');
    const closing = nextServerClose(upgraded.socket);
    upgraded.socket.write(clientFrame(Opcode.Text, Buffer.from([0x41, 0xff, 0x42])));
    const close = await closing;
    // RFC 6455 7.1.7 makes a 1007 close frame a SHOULD; uWS (v20.30, and upstream) closes the TCP connection without one.
    assert.equal(close.code, undefined, `expected no close frame (uWS), got close code ${close.code}`);
    await takeOne(a.backends, (l) => l.action === 'disconnected' && l.params.context.client_id === 'garbled');
    assert.deepEqual(a.backends.flatMap((b) => takeAll(b, (l) => l.action === 'new_message')), [], 'the invalid frame was not forwarded');

    // The same through `ws`: its close event reports 1006.
    const { client } = await a.join('garbled-ws');
    client.ws.send(Buffer.from([0x41, 0xff]), { binary: false });
    assert.equal((await client.closed).code, 1006);
    await a.roundTrip('after');
  });

  test('a client that never reads is dropped at --max-backpressure (counted as abnormal); a bystander in its room gets every message in order', async (t) => {
    const a = await arena(t, { maxBackpressure: 65_536 });
    // rawUpgrade leaves the socket paused: this client never reads a byte.
    const sloth = await rawUpgrade(a.broker.wsPort, '/lobby?client_id=sloth');
    t.after(() => sloth.socket.destroy());
    assert.equal(sloth.status, 101);
    await takeOne(a.backends, (l) => l.action === 'new_connection' && l.params.context.client_id === 'sloth');
    const slothGone = takeOne(a.backends, (l) => l.action === 'disconnected' && l.params.context.client_id === 'sloth', 60_000);
    let gone = false;
    void slothGone.then(() => (gone = true));

    const BATCH = 64;
    const payload = 'p'.repeat(4096);
    let seq = 0;
    let batches = 0;
    // Rounds of room messages until the sloth is dropped; the bystander must get each round whole and in order.
    while (!gone) {
      assert.ok(batches < 500, 'the sloth was never dropped (500 rounds of 256 KiB)');
      let text = '';
      const first = seq;
      for (let i = 0; i < BATCH; i++) text += line({ request_id: `s${seq}`, action: 'message_to_room', params: { room_id: '/lobby', message: `${seq++}:${payload}` } });
      a.good.sendRaw(text);
      for (let i = first; i < seq; i++) {
        const message = await a.bystander.nextMessage(10_000);
        assert.equal(message.slice(0, message.indexOf(':')), String(i), 'the bystander gets every message, in order');
      }
      batches++;
    }
    await slothGone;
    t.diagnostic(`the sloth was dropped after ${batches} rounds (${((batches * BATCH * payload.length) / 1048576).toFixed(1)} MiB)`);
    assert.equal(a.broker.broker.stats.connections.closedBy.abnormal, 1);
    assert.equal(a.broker.broker.stats.connections.open, 1, 'only the bystander is left');
    await a.roundTrip('after');
  });

  test('a half-open upgrade (slowloris) blocks nobody, and uWS closes it within 15 s', async (t) => {
    const a = await arena(t);
    const slow = connect(a.broker.wsPort, '127.0.0.1');
    t.after(() => slow.destroy());
    slow.on('error', () => undefined);
    await once(slow, 'connect');
    const startedAt = Date.now();
    let closedAfter: number | undefined;
    const closed = once(slow, 'close').then(() => (closedAfter = Date.now() - startedAt));
    slow.write('GET /lobby HTTP/1.1\r\nHost: x\r\n');
    // While it hangs, clients connect and leave, and the bystander keeps talking.
    const CLIENTS = 20;
    for (let n = 0; n < CLIENTS; n++) {
      const { client } = await a.join(`meanwhile-${n}`);
      await a.roundTrip(`meanwhile-${n}`);
      await client.close();
      await takeOne(a.backends, (l) => l.action === 'disconnected' && l.params.context.client_id === `meanwhile-${n}`);
    }
    assert.equal(closedAfter, undefined, 'the half-open upgrade was still pending while the others were served');
    await within(closed, 15_000, 'uWS to close the half-open upgrade');
    t.diagnostic(`served ${CLIENTS} clients meanwhile; uWS closed the half-open upgrade after ${closedAfter} ms`);
    assert.equal(a.broker.broker.stats.messagesOut.connection_request, CLIENTS + 1, 'the half-open request never reached a backend');
    await a.roundTrip('after');
  });
});

describe('connection churn', () => {
  test('10,000 connects and disconnects (50 at a time) through an accepting backend leave nothing behind', async (t) => {
    const TOTAL = 10_000;
    const CONCURRENCY = 50;
    const broker = await brokerFor(t);
    const sdk = new StrandsBackend({ port: broker.tcpPort, reconnect: false });
    t.after(() => sdk.close());
    const opened = new Set<string>();
    const disconnected = new Set<string>();
    let allGone!: () => void;
    const everyoneGone = new Promise<void>((resolve) => (allGone = resolve));
    sdk.onConnectionRequest((req) => ({ accepted: true, client_id: req.queryParam('client_id') }));
    sdk.onNewConnection((ctx) => opened.add(ctx.client_id));
    sdk.onDisconnect((ctx) => {
      disconnected.add(ctx.client_id);
      if (disconnected.size === TOTAL) allGone();
    });
    await sdk.connect();
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');

    const rssBefore = process.memoryUsage().rss;
    const startedAt = Date.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        const id = `c${next++}`;
        const client = await openClient(broker.url(`/churn?client_id=${id}`));
        await client.close();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await within(everyoneGone, 10_000, `${TOTAL} disconnected events (got ${disconnected.size} when the clients were done)`);
    const elapsed = Date.now() - startedAt;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    t.diagnostic(`${TOTAL} connections in ${elapsed} ms; rss grew ${(rssGrowth / 1048576).toFixed(1)} MiB`);

    assert.equal(opened.size, TOTAL, 'every connection got its new_connection');
    assert.equal(disconnected.size, TOTAL, 'and its disconnected');
    assert.equal(broker.broker.stats.connections.open, 0);
    assert.equal(broker.broker.stats.connections.opened, TOTAL);
    assert.equal(broker.broker.stats.connections.closedBy.normal, TOTAL);
    assert.equal(broker.broker.stats.rooms, 0);
    assert.equal(broker.broker.stats.messagesOut.disconnected, TOTAL);
    assert.ok(rssGrowth < 100 * 1048576, `rss grew by ${(rssGrowth / 1048576).toFixed(1)} MiB`);
    // Still healthy afterwards.
    const client = await openClient(broker.url('/churn?client_id=last'));
    t.after(() => client.ws.terminate());
    await waitUntil(() => opened.has('last'), 'the last client is announced');
  });
});
