/**
 * The broker's life and its limits per client: graceful stop, --max-payload
 * and per-socket backpressure (--max-backpressure). The per-backend mark
 * (--backend-hwm) is in backend-backpressure.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { TestBroker } from '../helpers/broker';
import { backendFor, brokerFor, joinedClient } from '../helpers/fixtures';
import type { Line } from '../helpers/raw-backend';
import { openClient, upgradeStatus } from '../helpers/ws-client';

/** Sockets closed without a close frame (1006). */
function abnormalCloses(broker: TestBroker): number {
  return broker.broker.stats.connections.closedBy.abnormal;
}

const isDisconnectOf = (clientId: string) => (l: Line): boolean => l.action === 'disconnected' && l.params.context?.client_id === clientId;

test('stop(): open clients get close 1001 and the backend gets their disconnected events before its socket ends', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const alice = (await joinedClient(t, broker, backend, 'alice')).client;
  const bob = (await joinedClient(t, broker, backend, 'bob')).client;
  const stopped = broker.stop();
  assert.equal((await alice.closed).code, 1001);
  assert.equal((await bob.closed).code, 1001);
  await backend.closed;
  // Lines are queued as they are read, so what is queued now came before the end of the stream.
  const gone = backend.lines.pending.filter((l) => l.action === 'disconnected').map((l) => l.params.context.client_id).sort();
  assert.deepEqual(gone, ['alice', 'bob']);
  await stopped;
});

test('stop(): an upgrade waiting for its backend gets HTTP 503', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const status = upgradeStatus(broker.url('/waiting'));
  await backend.next('connection_request');
  const stopped = broker.stop();
  assert.equal(await status, 503);
  await stopped;
});

test('after stop(): new WebSocket upgrades and new backends are refused', async (t) => {
  const broker = await brokerFor(t);
  await backendFor(t, broker.tcpPort, { accept: true });
  await broker.stop();
  const outcome = await openClient(broker.url('/late')).then(
    (client) => {
      client.ws.terminate();
      return 'accepted';
    },
    (err: { status?: number; code?: string }) => err.status ?? err.code,
  );
  assert.ok(outcome === 'ECONNREFUSED' || outcome === 503, `a WebSocket upgrade after stop got ${String(outcome)}`);
  const late = await backendOrRefusal(broker.tcpPort);
  assert.ok(late === 'ECONNREFUSED' || late === 'closed', `a backend after stop got ${late}`);
});

/** 'ECONNREFUSED', or 'closed' if the broker accepted the TCP connection but closed it at once. */
async function backendOrRefusal(port: number): Promise<string> {
  const socket: Socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
  socket.resume();
  await once(socket, 'close');
  return 'closed';
}

test('--max-payload: a larger frame closes that client with 1009; the backend sees disconnected; others keep working', async (t) => {
  const broker = await brokerFor(t, { maxPayload: 1024 });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const big = (await joinedClient(t, broker, backend, 'big')).client;
  const small = (await joinedClient(t, broker, backend, 'small')).client;
  big.ws.send('y'.repeat(1024));
  assert.equal((await backend.next('new_message')).params.message.length, 1024, 'a frame of exactly --max-payload is accepted');
  big.ws.send('x'.repeat(2048));
  const { code } = await big.closed;
  await backend.next('disconnected', 5000, isDisconnectOf('big'));
  assert.equal(backend.lines.pending.filter((l) => l.action === 'new_message').length, 0, 'the oversized frame reached the backend');
  small.ws.send('still here');
  assert.equal((await backend.next('new_message')).params.message, 'still here');
  backend.send({ request_id: 'r', action: 'message_to_connection', params: { conn_id: 'small', message: 'and back' } });
  assert.equal(await small.nextMessage(), 'and back');
  assert.equal(code, 1009, `the client saw close code ${code}, not 1009 (message too big)`);
});

test('--max-backpressure: a client that stops reading is dropped (disconnected, counted) while its room keeps receiving', async (t) => {
  const broker = await brokerFor(t, { maxBackpressure: 65536 });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const slow = (await joinedClient(t, broker, backend, 'slow', '/shared')).client;
  const fast = (await joinedClient(t, broker, backend, 'fast', '/shared')).client;
  const abnormalBefore = abnormalCloses(broker);
  slow.socket.pause();

  const bigLine = JSON.stringify({ request_id: 'big', action: 'message_to_connection', params: { conn_id: 'slow', message: 'z'.repeat(256 * 1024) } }) + '\n';
  const dropped = (): boolean => backend.lines.pending.some(isDisconnectOf('slow'));
  // Each round: a large message for the slow client, then a tick for the room, which the
  // fast client must get (so the broker has handled the round) before the next one.
  let rounds = 0;
  for (; rounds < 512 && !dropped(); rounds++) {
    backend.sendRaw(bigLine);
    backend.send({ request_id: `t${rounds}`, action: 'message_to_room', params: { room_id: '/shared', message: `tick ${rounds}` } });
    assert.equal(await fast.nextMessage(), `tick ${rounds}`);
  }
  await backend.next('disconnected', 5000, isDisconnectOf('slow'));
  assert.ok(rounds > 0, `dropped after ${rounds} rounds`);
  t.diagnostic(`slow client dropped after ${rounds} rounds of 256 KiB`);
  assert.equal(abnormalCloses(broker), abnormalBefore + 1);
  backend.send({ request_id: 'after', action: 'message_to_room', params: { room_id: '/shared', message: 'after the drop' } });
  assert.equal(await fast.nextMessage(), 'after the drop');
  fast.ws.send('fast still talks');
  assert.equal((await backend.next('new_message')).params.context.client_id, 'fast');
});
