/**
 * SIGTERM under load: every open client that reads gets 1001, and the last
 * log line says what could not be delivered to backends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StrandsBackend } from '../../src/sdk/backend';
import { waitUntil } from '../helpers/fixtures';
import { RawBackend } from '../helpers/raw-backend';
import { openClient, type TestClient } from '../helpers/ws-client';
import { spawnBroker } from '../helpers/spawn-broker';

const CLIENTS = 50;
const ROUNDS = 4;

for (let round = 1; round <= ROUNDS; round++) {
  test(`SIGTERM under load (round ${round} of ${ROUNDS}): each of ${CLIENTS} reading clients gets 1001, and the broker exits 0`, async (t) => {
    const broker = await spawnBroker(t, ['--log-level', 'info']);
    const backend = new StrandsBackend({ port: broker.tcpPort, reconnect: false });
    backend.onConnectionRequest(() => ({ accepted: true, room_id: 'load' }));
    // Every message goes back to the whole room: the broker writes CLIENTS frames for each one it reads.
    backend.onMessage((message) => backend.sendToRoom('load', message));
    await backend.connect();
    t.after(() => backend.close());
    const clients: TestClient[] = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await openClient(`ws://127.0.0.1:${broker.wsPort}/load`));
    // Every client reads everything: the senders keep at most WINDOW messages ahead of the slowest reader, so
    // nobody goes over --max-backpressure, while each socket still has up to WINDOW frames queued when SIGTERM comes.
    const WINDOW = 40;
    const receivedBy = clients.map(() => 0);
    clients.forEach((client, i) => client.ws.on('message', () => (receivedBy[i] = (receivedBy[i] as number) + 1)));
    let sent = 0;
    const payload = 'x'.repeat(16_000);
    const load = setInterval(() => {
      for (const client of clients) if (client.ws.readyState === client.ws.OPEN && sent - Math.min(...receivedBy) < WINDOW) (sent++, client.ws.send(payload));
    }, 1);
    t.after(() => clearInterval(load));
    const received = (): number => receivedBy.reduce((a, b) => a + b, 0);
    await waitUntil(() => received() > 20 * CLIENTS, 'the room traffic is flowing', 10_000);
    // The clients look away for a moment as the signal comes, so that frames, and then the close frame, wait in the
    // broker's buffers: a reading client, only not an instant one.
    const sockets = clients.map((c) => c.socket);
    for (const socket of sockets) socket.pause();
    broker.child.kill('SIGTERM');
    await broker.log('shutting down');
    setTimeout(() => sockets.forEach((socket) => socket.resume()), 300);
    const codes = await Promise.all(clients.map((c) => c.closed.then((x) => x.code)));
    clearInterval(load);
    const stopped = await broker.log('strands broker stopped');
    const exit = await broker.exited;
    const wrong = codes.filter((code) => code !== 1001);
    assert.deepEqual(wrong, [], `${wrong.length} of ${CLIENTS} clients got another close code than 1001: ${wrong.join(', ')}`);
    assert.equal(exit.code, 0);
    assert.equal(typeof stopped.undeliveredEvents, 'number');
  });
}

test('SIGTERM with a backend that does not read: the events cut at the deadline are counted in the last log lines', async (t) => {
  const broker = await spawnBroker(t, ['--log-level', 'info', '--shutdown-timeout', '300', '--max-payload', '65536']);
  const backend = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => backend.kill());
  const client = await openClient(`ws://127.0.0.1:${broker.wsPort}/room?client_id=talker`);
  t.after(() => client.ws.terminate());
  await backend.next('new_connection');
  backend.socket.pause();
  // Far more than the kernel buffers of both sockets hold: the rest waits in the broker's link.
  const body = 'y'.repeat(60_000);
  for (let i = 0; i < 400; i++) client.ws.send(body);
  await new Promise<void>((resolve) => client.ws.send('last', () => resolve()));
  broker.child.kill('SIGTERM');
  const cut = await broker.log('shutdown deadline: events to backends cut');
  const stopped = await broker.log('strands broker stopped');
  const backends = cut.backends as { events: number; bytes: number }[];
  assert.equal(backends.length, 1);
  assert.ok((backends[0]?.events ?? 0) > 0, `events cut: ${JSON.stringify(backends)}`);
  assert.ok((stopped.undeliveredEvents as number) > 0);
  assert.equal(stopped.undeliveredEvents, backends[0]?.events);
  assert.equal((await broker.exited).code, 0);
});
