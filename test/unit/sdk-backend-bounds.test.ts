/**
 * StrandsBackend's bound on what it holds for a broker: sends beyond 8 MiB
 * pending (bufferedAmount: its own buffer plus the socket's writableLength) are dropped and
 * counted, also while connected to a broker that does not read.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { StrandsBackend } from '../../src/sdk/backend';

const MiB = 1024 * 1024;
const MAX_PENDING = 8 * MiB;

/** The next turn of the event loop, after pending setImmediate callbacks (the SDK flushes in one). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A fake broker that does not read its socket (until a test resumes it), and
 * an SDK backend connected to it; both closed when the test ends. `onData`
 * sees what the broker reads once resumed.
 */
async function stalledBroker(t: TestContext, onData: (chunk: Buffer) => void = () => undefined): Promise<{ backend: StrandsBackend; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.pause();
    socket.on('error', () => undefined);
    socket.on('data', onData);
    accepted.push(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  t.after(async () => {
    for (const s of accepted) s.destroy();
    server.close();
  });
  const backend = new StrandsBackend({ port, reconnect: false });
  t.after(() => backend.close());
  await backend.connect();
  return { backend, accepted };
}

test('while connected to a broker that never reads, sends beyond 8 MiB pending are dropped and counted, and what is held stays bounded', { timeout: 20_000 }, async (t) => {
  const { backend } = await stalledBroker(t);
  assert.equal(backend.connected, true);

  const message = 'm'.repeat(MiB);
  let sends = 0;
  let peak = 0;
  for (; backend.droppedSends === 0; sends++) {
    assert.ok(sends < 256, `no send was dropped after ${sends} broadcasts of 1 MiB`);
    backend.broadcast(message);
    await nextTurn();
    peak = Math.max(peak, backend.bufferedAmount);
  }
  t.diagnostic(`first drop after ${sends} broadcasts of 1 MiB; held then: ${backend.bufferedAmount}`);
  assert.equal(backend.connected, true, 'dropped because it disconnected, not because the broker is slow');
  assert.equal(backend.droppedSends, 1);

  // Keep sending: every one is dropped now, and nothing more piles up.
  for (let i = 0; i < 32; i++) {
    backend.broadcast(message);
    await nextTurn();
    peak = Math.max(peak, backend.bufferedAmount);
    assert.ok(backend.bufferedAmount <= MAX_PENDING, `the backend holds ${backend.bufferedAmount}`);
  }
  assert.equal(backend.droppedSends, 33);
  assert.ok(peak <= MAX_PENDING, `held ${peak} bytes at most, over ${MAX_PENDING}`);
  assert.equal(backend.connected, true);

  // A small send that still fits goes through (held grows by it); it is not dropped.
  if (backend.bufferedAmount + 200 <= MAX_PENDING) {
    backend.sendToConnection('c', 'small');
    assert.equal(backend.droppedSends, 33);
  }
});

test('a broker that reads again gets what was held, and sends are accepted again', { timeout: 20_000 }, async (t) => {
  let tail = '';
  let sawAfter = false;
  const { backend, accepted } = await stalledBroker(t, (chunk) => {
    tail = (tail + chunk.toString('latin1')).slice(-64);
    if (tail.includes('"message":"after"')) sawAfter = true;
  });
  await new Promise<void>((resolve) => {
    const check = (): void => (accepted.length > 0 ? resolve() : void setImmediate(check));
    check();
  });

  const message = 'm'.repeat(MiB);
  for (let sends = 0; backend.droppedSends === 0; sends++) {
    assert.ok(sends < 256, 'no send was dropped');
    backend.broadcast(message);
    await nextTurn();
  }
  const dropped = backend.droppedSends;
  // The broker reads again: the socket drains, and a new send is taken.
  (accepted[0] as net.Socket).resume();
  const deadline = Date.now() + 10_000;
  while (backend.bufferedAmount > 0) {
    assert.ok(Date.now() < deadline, `still held: ${backend.bufferedAmount}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  backend.broadcast('after');
  await nextTurn();
  assert.equal(backend.droppedSends, dropped);
  while (!sawAfter) {
    assert.ok(Date.now() < deadline, 'the broker never got the send made after it read again');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
});
