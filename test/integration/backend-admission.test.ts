/**
 * Who gets in on the backend port: silent or wrong connections cannot keep a
 * backend with the right token out, however they churn, and no more than
 * --max-backends get in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { backendFor, brokerFor, joinedClient, waitUntil } from '../helpers/fixtures';
import { within } from '../helpers/deadline';
import { spawnBroker } from '../helpers/spawn-broker';

const TOKEN = 's3cret';
const AUTH_LINE = JSON.stringify({ request_id: 'auth-1', action: 'auth', params: { token: TOKEN } }) + '\n';

/** A connection that never says anything; errors (it is closed by the broker) are ignored. */
async function silent(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  socket.resume();
  await once(socket, 'connect');
  return socket;
}

test('--backend-token: past the waiting caps the oldest silent connections are closed, newer ones stay and may authenticate', async (t) => {
  const broker = await brokerFor(t, { backendToken: TOKEN, heartbeatInterval: 0 });
  const sockets: Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  for (let i = 0; i < 40; i++) sockets.push(await silent(broker.tcpPort));
  // All from 127.0.0.1: at most 16 may wait from one address.
  await waitUntil(() => broker.broker.stats.backends.authenticating === 16, '16 connections wait to authenticate');
  await waitUntil(() => sockets.slice(0, 24).every((s) => s.destroyed), 'the 24 oldest are closed');
  assert.ok(sockets.slice(24).every((s) => !s.destroyed), 'the 16 newest are still open');
  assert.equal(broker.broker.stats.backends.evicted, 24);
  (sockets[39] as Socket).write(AUTH_LINE);
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the newest is admitted');
  assert.equal(broker.broker.stats.backends.authenticating, 15);
});

test('--backend-token: a flood from one address cannot push out a connection waiting from another', async (t) => {
  const broker = await brokerFor(t, { backendToken: TOKEN, heartbeatInterval: 0 });
  const sockets: Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  const patient = await silent(broker.tcpPort, '127.0.0.2');
  sockets.push(patient);
  for (let i = 0; i < 100; i++) sockets.push(await silent(broker.tcpPort));
  await waitUntil(() => broker.broker.stats.backends.evicted === 84, '84 of the flood are closed');
  assert.equal(patient.destroyed, false, 'the connection from 127.0.0.2 was pushed out by a flood from 127.0.0.1');
  patient.write(AUTH_LINE);
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'it is admitted');
});

test('--backend-token: while a flood of silent connections churns, a backend with the right token gets in within 1 s, 50 times out of 50', async (t) => {
  const broker = await spawnBroker(t, ['--backend-token', TOKEN, '--heartbeat-interval', '50', '--log-level', 'info']);
  // The flood: 200 silent connections, each reopened as soon as the broker closes it.
  let flooding = true;
  let reopened = 0;
  const flood = (): void => {
    const socket = connect(broker.tcpPort, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!flooding) return;
      reopened++;
      flood();
    });
  };
  for (let i = 0; i < 200; i++) flood();
  t.after(() => {
    flooding = false;
  });
  const times: number[] = [];
  for (let attempt = 0; attempt < 50; attempt++) {
    const started = Date.now();
    const backend = connect(broker.tcpPort, '127.0.0.1');
    backend.on('error', () => undefined);
    backend.write(AUTH_LINE);
    // A heartbeat is sent only to admitted backends: receiving one proves this one got in.
    const heartbeat = new Promise<void>((resolve, reject) => {
      let text = '';
      backend.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('"heartbeat"')) resolve();
      });
      backend.on('close', () => reject(new Error(`attempt ${attempt}: closed by the broker before it was admitted (${text.trim()})`)));
    });
    await within(heartbeat, 1000, `attempt ${attempt} to be admitted`);
    times.push(Date.now() - started);
    backend.destroy();
    await once(backend, 'close');
  }
  flooding = false;
  t.diagnostic(`50 admissions, slowest ${Math.max(...times)} ms, median ${times.sort((a, b) => a - b)[25]} ms; the flood reopened ${reopened} connections meanwhile`);
  assert.ok(reopened > 500, `the flood churned only ${reopened} times: it did not test anything`);
});

test('--max-backends 1: a second backend is told why and disconnected, and the first goes on serving', async (t) => {
  const broker = await brokerFor(t, { maxBackends: 1, heartbeatInterval: 0 });
  const first = await backendFor(t, broker.tcpPort, { accept: true });
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the first backend is admitted');
  const second = await backendFor(t, broker.tcpPort, { accept: true });
  const refusal = await second.next('error');
  assert.equal(refusal.params.error, 'backend refused: 1 backends are connected, the most --max-backends allows');
  await second.closed;
  assert.equal(broker.broker.stats.backends.refusedOverLimit, 1);
  assert.equal(broker.broker.stats.backends.connected, 1);
  const { client } = await joinedClient(t, broker, first, 'still-served');
  assert.equal(client.ws.readyState, client.ws.OPEN);
});
