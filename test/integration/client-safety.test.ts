/**
 * What clients get is always safe for them, and what they cost the broker is
 * bounded by the flags: valid UTF-8 in every text frame, memory for a room
 * message within the documented formula, messages over --max-message refused.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { backendFor, brokerFor, joinedClient, waitUntil } from '../helpers/fixtures';
import { RawBackend } from '../helpers/raw-backend';
import { spawnBroker } from '../helpers/spawn-broker';
import { openClient, type TestClient } from '../helpers/ws-client';

const KiB = 1024;
const MiB = 1024 * KiB;

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * KiB;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** A broker process with `args`, a raw backend, and `count` reading clients in room /big, each one's new_connection seen. */
async function roomOfClients(t: TestContext, args: string[], count: number): Promise<{ broker: Awaited<ReturnType<typeof spawnBroker>>; backend: RawBackend; clients: TestClient[] }> {
  const broker = await spawnBroker(t, args);
  const backend = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => backend.kill());
  const clients: TestClient[] = [];
  t.after(() => clients.forEach((c) => c.ws.terminate()));
  for (let i = 0; i < count; i++) clients.push(await openClient(`ws://127.0.0.1:${broker.wsPort}/big?client_id=c${i}`));
  await waitUntil(() => backend.lines.pending.filter((l) => l.action === 'new_connection').length === count, `${count} clients joined`, 20_000);
  return { broker, backend, clients };
}

test('a lone surrogate from a backend (an emoji cut in half) reaches clients as U+FFFD in valid UTF-8; nobody is disconnected', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { client: a } = await joinedClient(t, broker, backend, 'a', '/r');
  const { client: b } = await joinedClient(t, broker, backend, 'b', '/r');
  // Python's json.dumps and JSON.stringify both write a lone surrogate as this escape.
  backend.sendRaw('{"request_id":"s1","action":"broadcast","params":{"message":"hi \\ud83d"}}\n');
  backend.sendRaw('{"request_id":"s2","action":"message_to_room","params":{"room_id":"/r","message":"\\ude00 tail"}}\n');
  backend.sendRaw('{"request_id":"s3","action":"message_to_connection","params":{"conn_id":"a","message":"x\\udbff"}}\n');
  for (const client of [a, b]) {
    assert.equal(await client.nextMessage(), 'hi \ufffd');
    assert.equal(await client.nextMessage(), '\ufffd tail');
  }
  assert.equal(await a.nextMessage(), 'x\ufffd');
  backend.send({ request_id: 's4', action: 'broadcast', params: { message: 'still open 😀' } });
  assert.equal(await a.nextMessage(), 'still open 😀');
  assert.equal(await b.nextMessage(), 'still open 😀');
  assert.equal(broker.broker.stats.repairedText, 3);
});

test('the largest message --max-message allows, sent to a room of 500 reading clients, keeps the broker within the memory formula', async (t) => {
  const maxMessage = 256 * KiB;
  const maxBackpressure = 1 * MiB;
  const { broker, backend, clients } = await roomOfClients(t, ['--max-payload', String(maxMessage), '--max-backpressure', String(maxBackpressure)], 500);
  const before = memory(broker.child.pid as number);
  const message = 'm'.repeat(maxMessage);
  let received = 0;
  for (const client of clients) client.ws.on('message', (data: Buffer) => data.length === maxMessage && received++);
  for (let round = 0; round < 3; round++) backend.send({ request_id: `big${round}`, action: 'message_to_room', params: { room_id: '/big', message } });
  await waitUntil(() => received === 1500, 'every client got the three messages', 30_000);
  const after = memory(broker.child.pid as number);
  // Per socket at most --max-backpressure plus one message (docs/operations.md, "Memory").
  const bound = 500 * (maxBackpressure + maxMessage);
  const grew = after.peak - before.rss;
  t.diagnostic(`RSS ${(before.rss / MiB).toFixed(1)} MiB before; peak ${(after.peak / MiB).toFixed(1)} MiB; grew ${(grew / MiB).toFixed(1)} MiB, formula bound ${(bound / MiB).toFixed(0)} MiB`);
  assert.ok(grew <= bound, `the broker grew by ${grew} bytes, over the formula's ${bound}`);
});

test('a 10 MB message is refused with an error event; memory grows by what was read at most, never by a copy per recipient', async (t) => {
  const { broker, backend, clients } = await roomOfClients(t, [], 100);
  const pid = broker.child.pid as number;
  const before = memory(pid);
  // Over --max-line (6 x --max-message + 64 KiB by default): discarded as it streams in, never held whole.
  const huge = 'h'.repeat(10 * 1000 * 1000);
  backend.send({ request_id: 'huge', action: 'message_to_room', params: { room_id: '/big', message: huge } });
  const error = await backend.next('error', 10_000);
  assert.match(String(error.params.error), /^line of \d+ bytes exceeds --max-line 6356992; discarded$/);
  const afterHuge = memory(pid);
  t.diagnostic(`after the 10 MB line: RSS ${(afterHuge.rss / MiB).toFixed(1)} MiB, peak ${(afterHuge.peak / MiB).toFixed(1)} MiB`);
  // Over --max-message but within --max-line: read, refused by name.
  const large = 'l'.repeat(2 * MiB);
  for (const action of ['message_to_room', 'broadcast', 'message_to_connection'] as const) {
    backend.send({ request_id: `large-${action}`, action, params: { room_id: '/big', conn_id: 'c1', message: large } });
    const error = await backend.next('error', 10_000);
    assert.equal(error.params.error, `${action}: message of ${2 * MiB} bytes exceeds --max-message ${MiB}; not sent (request_id large-${action})`);
  }
  backend.send({ request_id: 'small', action: 'message_to_room', params: { room_id: '/big', message: 'small' } });
  await Promise.all(clients.map((c) => c.messages.next((m) => m === 'small', 10_000, 'the small message')));
  const after = memory(pid);
  t.diagnostic(`RSS ${(before.rss / MiB).toFixed(1)} MiB before, ${(after.rss / MiB).toFixed(1)} MiB after, peak ${(after.peak / MiB).toFixed(1)} MiB`);
  // 16 MB were read (the 10 MB line in 64 KiB reads and a tail of up to --max-line, three 2 MiB lines whole):
  // garbage until the next collection. A copy per socket would be 100 x 10 MB, or 100 x 2 MiB.
  assert.ok(after.peak - before.rss < 48 * MiB, `the broker's peak grew by ${((after.peak - before.rss) / MiB).toFixed(1)} MiB`);
});
