/**
 * At the process's descriptor limit: idle connections to the WebSocket port
 * (never upgrading, reopened as they are closed) cannot lock out backends or
 * open clients, nor make the broker spin; it recovers by itself and says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { RawBackend } from '../helpers/raw-backend';
import { spawnBroker } from '../helpers/spawn-broker';
import { openClient, type TestClient } from '../helpers/ws-client';

const LIMIT = 300;
const RESERVE = 48;

/** CPU seconds (user + system) the process has used. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

test(`under prlimit --nofile=${LIMIT}: a flood of idle connections pauses the WebSocket port, open clients and new backends are served, nothing spins, and it recovers`, async (t) => {
  const broker = await spawnBroker(t, ['--fd-reserve', String(RESERVE), '--log-level', 'info'], {}, ['prlimit', `--nofile=${LIMIT}:${LIMIT}`]);
  const pid = broker.child.pid as number;
  const backend = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => backend.kill());
  const clients: TestClient[] = [];
  t.after(() => clients.forEach((c) => c.ws.terminate()));
  for (let i = 0; i < 10; i++) clients.push(await openClient(`ws://127.0.0.1:${broker.wsPort}/room?client_id=c${i}`));

  // The flood: as many idle TCP connections as the broker takes, each reopened when it is closed or refused.
  let flooding = true;
  const flood = new Set<Socket>();
  const open = (): void => {
    if (!flooding) return;
    const socket = connect(broker.wsPort, '127.0.0.1');
    flood.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      flood.delete(socket);
      setTimeout(open, 20);
    });
  };
  for (let i = 0; i < LIMIT; i++) open();
  t.after(() => {
    flooding = false;
    flood.forEach((s) => s.destroy());
  });
  const paused = await broker.log('descriptors running out', 15_000);
  t.diagnostic(`paused with ${String(paused.open)} descriptors open of ${String(paused.limit)}`);

  // Nothing spins: over a second of flood, the broker uses a fraction of a core.
  const before = cpuSeconds(pid);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const used = cpuSeconds(pid) - before;
  assert.ok(used < 0.5, `the broker used ${used.toFixed(2)} s of CPU in 1 s of flood`);

  // Open clients are served.
  backend.send({ request_id: 'r1', action: 'message_to_room', params: { room_id: '/room', message: 'still here' } });
  await Promise.all(clients.map((c) => c.messages.next((m) => m === 'still here', 5000, 'the room message')));

  // A backend gets in through the reserve.
  const late = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => late.kill());
  await broker.stdout.next((l) => l.msg === 'backend connected' && l.backends === 2, 5000, 'the second backend connected');

  // The flood stops: the port opens again by itself and a new client connects.
  flooding = false;
  flood.forEach((s) => s.destroy());
  const fdsNow = (): number => readdirSync(`/proc/${pid}/fd`).length;
  const watch = setInterval(() => t.diagnostic(`broker fds ${fdsNow()}, flood ${flood.size}`), 1000);
  await broker.log('descriptors free again', 20_000).finally(() => clearInterval(watch));
  const fresh = await openClient(`ws://127.0.0.1:${broker.wsPort}/room?client_id=fresh`);
  clients.push(fresh);
  await backend.next('new_connection', 5000, (l) => l.params.context.client_id === 'fresh');
  assert.equal(broker.child.exitCode, null);
});

test('at start, a descriptor limit below --max-connections plus --fd-reserve is warned about', async (t) => {
  const broker = await spawnBroker(t, ['--max-connections', '5000', '--fd-reserve', '64', '--log-level', 'info'], {}, ['prlimit', '--nofile=1024:1024']);
  const warning = await broker.log('the descriptor limit is below --max-connections plus --fd-reserve');
  assert.equal(warning.hardLimit, 1024);
  assert.equal(warning.maxConnections, 5000);
});
