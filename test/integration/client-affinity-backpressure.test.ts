/**
 * --balance client when one owner reads slowly: the clients of the other
 * backend get all their events, in order, while the backed-up owner keeps its
 * own clients' events and is not dropped; and why a reading owner is not
 * dropped for a burst.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor, brokerFor, joinAny, linkOf, takeAll, tolerateReset, waitUntil } from '../helpers/fixtures';
import type { RawBackend } from '../helpers/raw-backend';
import type { TestClient } from '../helpers/ws-client';

const KiB = 1024;

test('--balance client: clients of a healthy backend get all their events in order while the other owner is backed up', async (t) => {
  const HWM = 16 * KiB;
  const broker = await brokerFor(t, { balance: 'client', backendHwm: HWM, heartbeatInterval: 0 });
  const a = await backendFor(t, broker.tcpPort, { accept: true });
  const b = await backendFor(t, broker.tcpPort, { accept: true });
  tolerateReset(a);
  tolerateReset(b);
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');

  // Clients until each backend owns at least three (ownership read from where each new_connection went).
  const owned = new Map<RawBackend, { id: string; client: TestClient }[]>([[a, []], [b, []]]);
  for (let i = 0; i < 60 && [...owned.values()].some((list) => list.length < 3); i++) {
    const id = `c${i}`;
    const { client, owner } = await joinAny(t, broker, [a, b], id);
    owned.get(owner)?.push({ id, client });
  }
  // The healthy one is the backend owning fewer clients (three): its first three clients take part.
  const [stalled, healthy] = (owned.get(a)?.length ?? 0) > (owned.get(b)?.length ?? 0) ? [a, b] : [b, a];
  const stalledClients = owned.get(stalled) ?? [];
  const healthyClients = (owned.get(healthy) ?? []).slice(0, 3);
  assert.ok(stalledClients.length >= 3 && healthyClients.length === 3, `ownership: ${stalledClients.length} / ${healthyClients.length}`);
  const stalledLink = linkOf(broker, stalled);
  const healthyLink = linkOf(broker, healthy);

  // Backs the stalled backend up: a client it owns sends until its link is above the mark. Small steps keep
  // the link under twice the mark (where it would be dropped): 16 KiB while the kernel takes everything, then one message at a time.
  stalled.socket.pause();
  const filler = stalledClients[0] as { id: string; client: TestClient };
  const piece = 'f'.repeat(4 * KiB);
  let fills = 0;
  for (let round = 0; !stalledLink.aboveHighWaterMark; round++) {
    assert.ok(round < 5000, `the stalled backend never went above its mark (unsent ${stalledLink.unsentBytes})`);
    const batch = stalledLink.unsentBytes === 0 ? 4 : 1;
    const target = broker.broker.stats.messagesOut.new_message + batch;
    for (let k = 0; k < batch; k++) filler.client.ws.send(`fill ${fills++} ${piece}`);
    await waitUntil(() => broker.broker.stats.messagesOut.new_message >= target, 'the broker handled the fill messages');
  }
  t.diagnostic(`stalled backend above its mark after ${fills} messages of 4 KiB; unsent ${stalledLink.unsentBytes}`);

  // In rounds of one message per healthy client (9 KiB: under the mark, see the burst test below for why that matters),
  // each round checked in order at the healthy backend before the next.
  const PER_CLIENT = 50;
  const pad = 'p'.repeat(3 * KiB);
  for (let i = 0; i < PER_CLIENT; i++) {
    for (const { id, client } of healthyClients) client.ws.send(`${id}:${i}:${pad}`);
    // The stalled backend's clients keep talking too (a little: not enough to take it past twice its mark).
    if (i === 10 || i === 30) for (const { id, client } of stalledClients.slice(1, 3)) client.ws.send(`${id}:late${i}:${'s'.repeat(512)}`);
    for (const { id } of healthyClients) {
      const line = await healthy.next('new_message', 5000, (l) => l.params.context?.client_id === id).catch((err: Error) => {
        throw new Error(
          `${err.message}: ${id} #${i}; stalled link closed ${stalledLink.closed} unsent ${stalledLink.unsentBytes}; healthy link closed ${healthyLink.closed}; ` +
            `pool ${broker.broker.stats.backends.connected}, queued ${broker.broker.stats.queue.depth}, queueDropped ${broker.broker.stats.queue.dropped}, droppedForBackpressure ${broker.broker.stats.backends.dropped}`,
        );
      });
      assert.equal(String(line.params.message).slice(0, `${id}:${i}:`.length), `${id}:${i}:`, `${id}'s events out of order`);
      assert.ok(stalledLink.aboveHighWaterMark && !stalledLink.closed, `the stalled backend stopped being backed up at ${id} #${i}`);
    }
  }
  const stray = takeAll(healthy, (l) => l.action === 'new_message' && stalledClients.some((c) => c.id === l.params.context?.client_id));
  assert.deepEqual(stray.map((l) => String(l.params.message).slice(0, 20)), [], "the stalled backend's clients' events went elsewhere");
  assert.equal(broker.broker.stats.queue.dropped, 0);
  assert.equal(broker.broker.stats.queue.depth, 0);
  assert.equal(stalledLink.closed, false, 'the stalled backend was dropped');
  assert.ok(stalledLink.aboveHighWaterMark, 'the stalled backend was no longer backed up at the end');
  assert.ok(stalledLink.unsentBytes <= 2 * HWM + 8 * KiB);
  assert.equal(healthyLink.closed, false);
  assert.equal(broker.broker.stats.backends.dropped, 0);
});

test('--balance client: a reading backend is not dropped when its clients send more than twice the mark in one burst', async (t) => {
  // Shows why the test above paces its rounds: the hard limit (twice the mark) is checked line by line before the
  // link's deferred flush, so lines arriving in one event-loop turn count against it even though the backend reads.
  const HWM = 16 * KiB;
  const broker = await brokerFor(t, { balance: 'client', backendHwm: HWM, heartbeatInterval: 0 });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  tolerateReset(backend);
  const { client } = await joinAny(t, broker, [backend], 'burst');
  const burst = Array.from({ length: 20 }, (_, i) => `b${i} ${'x'.repeat(3 * KiB)}`); // 60 KiB at once
  for (const message of burst) client.ws.send(message);
  for (const message of burst) {
    const line = await backend.next('new_message', 3000).catch((err: Error) => {
      throw new Error(
        `${err.message} (${message.slice(0, 4)}): the reading backend was dropped=${backend.socket.destroyed}, droppedForBackpressure=${broker.broker.stats.backends.dropped}, ` +
          `pool ${broker.broker.stats.backends.connected}, queued ${broker.broker.stats.queue.depth}`,
      );
    });
    assert.equal(line.params.message, message);
  }
  assert.equal(broker.broker.stats.backends.dropped, 0);
});
