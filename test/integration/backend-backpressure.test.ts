/**
 * What the broker owes a backend that reads slowly or not at all
 * (--backend-hwm): above the mark it is passed over and not read from, so even
 * a backend flooding bad lines without reading is held to about twice the mark
 * and stays up; what waited for it is delivered once it is below the mark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor, brokerFor, joinAny, joinedClient, linkOf, takeAll, takeOne, tolerateReset, waitUntil } from '../helpers/fixtures';
import type { Line, RawBackend } from '../helpers/raw-backend';
import { openClient } from '../helpers/ws-client';

const KiB = 1024;

test('--backend-hwm: round-robin passes over a backend whose unsent bytes are above the mark', async (t) => {
  const broker = await brokerFor(t, { backendHwm: 1024, maxPayload: 2 * 1024 * 1024 });
  const backends = [await backendFor(t, broker.tcpPort, { accept: true }), await backendFor(t, broker.tcpPort, { accept: true })];
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');
  const client = await openClient(broker.url('/hwm?client_id=flood'));
  t.after(() => client.ws.terminate());
  await takeOne(backends, (l) => l.action === 'new_connection');

  const [stuck, reading] = backends as [RawBackend, RawBackend];
  stuck.socket.pause();
  const stuckLink = linkOf(broker, stuck);
  // Half of these go to the paused backend: 8 MiB, more than the kernel's socket buffers between it and the broker hold.
  const chunk = 'f'.repeat(1024 * 1024);
  for (let i = 0; i < 16; i++) client.ws.send(`flood ${i} ${chunk}`);
  await waitUntil(() => stuckLink.aboveHighWaterMark, 'the paused backend is above its high-water mark');

  const probes = Array.from({ length: 10 }, (_, i) => `probe ${i}`);
  for (const probe of probes) client.ws.send(probe);
  const isProbe = (l: Line): boolean => l.action === 'new_message' && l.params.message.startsWith('probe ');
  for (const probe of probes) assert.equal((await reading.next('new_message', 5000, isProbe)).params.message, probe);
  stuck.kill();
});

test('--backend-hwm: events queued while the only backend was briefly above the mark are delivered without waiting for a later event', async (t) => {
  const broker = await brokerFor(t, { backendHwm: 1024 });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { client } = await joinedClient(t, broker, backend, 'burst');
  // Sent in one go, they reach the broker in one turn: after the first, the link holds
  // more than 1024 unsent bytes until its write, so the rest wait in the queue.
  const burst = Array.from({ length: 5 }, (_, i) => `b${i} ${'x'.repeat(2048)}`);
  for (const message of burst) client.ws.send(message);
  for (const message of burst) assert.equal((await backend.next('new_message')).params.message, message);
});

// Short lines make many error events per byte read, long ones few: neither may push the broker past the bound.
for (const [shape, badLine, lines] of [
  ['2-byte lines (x\\n)', 'x\n', 300_000],
  ['200-byte lines', 'y'.repeat(199) + '\n', 100_000], // 20 MB: more than the kernel buffers both ways hold
] as const) {
  test(`a backend flooding bad ${shape} without reading is held to about twice --backend-hwm, stays up, and is obeyed once it reads again`, async (t) => {
    const HWM = 64 * KiB;
    const broker = await brokerFor(t, { backendHwm: HWM, heartbeatInterval: 0 });
    const flood = await backendFor(t, broker.tcpPort, { accept: true });
    const good = await backendFor(t, broker.tcpPort, { accept: true });
    tolerateReset(flood);
    await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');
    const link = linkOf(broker, flood);
    const { client: bystander } = await joinAny(t, broker, [flood, good], 'bystander', '/lobby');

    flood.socket.pause();
    flood.sendRaw(badLine.repeat(lines));
    // The kernel's buffers take 50,000 to 65,000 error events first: about 3 s of the broker's time on a loaded 2-core machine.
    await waitUntil(() => link.aboveHighWaterMark || link.closed, 'the flooding backend is above its high-water mark', 20_000);
    assert.equal(link.closed, false, 'the flooding backend was dropped instead of being paused above its mark');
    assert.ok(link.unsentBytes <= 2 * HWM + 200, `the broker holds ${link.unsentBytes} bytes for the flooding backend`);
    assert.ok(broker.broker.stats.errors.invalid_json < lines, 'the broker read the whole flood although its backend did not read');

    // Nobody else notices: the bystander's message reaches the good backend, whose answer reaches it.
    bystander.ws.send('ping');
    await good.next('new_message', 5000, (l) => l.params.message === 'ping');
    good.send({ request_id: 'pong', action: 'message_to_connection', params: { conn_id: 'bystander', message: 'pong' } });
    await bystander.messages.next((m) => m === 'pong', 5000, 'the pong');
    assert.equal(link.closed, false);
    assert.ok(link.unsentBytes <= 2 * HWM + 200);

    flood.socket.resume();
    const error = await flood.next('error', 5000, (l) => /invalid JSON/.test(String(l.params.error)));
    assert.deepEqual(error.params.context, {});
    flood.send({ request_id: 'after-flood', action: 'broadcast', params: { message: 'after the flood' } });
    await bystander.messages.next((m) => m === 'after the flood', 20_000, 'the broadcast sent after the flood');
    assert.equal(broker.broker.stats.errors.invalid_json, lines);
    assert.equal(link.closed, false);
    assert.equal(broker.broker.stats.backends.dropped, 0);
  });
}

test('a backend that reads, sending 5000 bad lines in one write, stays connected: answered while it keeps up, every line counted', async (t) => {
  // 10 KB of bad lines make ~400 KB of error events: the broker writes them as the
  // backend reads, and would only count (not answer) while the link owed more than its mark.
  const broker = await brokerFor(t, { backendHwm: 64 * KiB, heartbeatInterval: 0 });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  tolerateReset(backend);
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');
  backend.sendRaw('x\n'.repeat(5000));
  await waitUntil(() => broker.broker.stats.errors.invalid_json === 5000, 'every bad line is counted');
  const { client } = await joinAny(t, broker, [backend], 'witness', '/lobby');
  backend.send({ request_id: 'after', action: 'broadcast', params: { message: 'still obeyed' } });
  assert.equal(await client.nextMessage(), 'still obeyed');
  assert.equal(backend.socket.destroyed, false);
  const answered = takeAll(backend, (l) => l.action === 'error').length;
  assert.ok(answered > 0 && answered <= 5000, `answered ${answered} of 5000 bad lines`);
  assert.equal(broker.broker.stats.backends.dropped, 0);
});
