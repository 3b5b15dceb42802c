/**
 * A backend that dies holding events it had not been sent yet: they go to a
 * live backend, even with the queue disabled (--queue-size 0).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor, brokerFor, joinAny, linkOf, takeAll, tolerateReset, waitUntil } from '../helpers/fixtures';

const KiB = 1024;
const MiB = 1024 * KiB;

test('--queue-size 0: events a dead backend held unsent reach the live backend, none dropped', async (t) => {
  // A mark high enough that round-robin never passes over the paused backend: it keeps taking every other event.
  const broker = await brokerFor(t, { queueSize: 0, backendHwm: 256 * MiB, heartbeatInterval: 0, maxPayload: 2 * MiB });
  const dying = await backendFor(t, broker.tcpPort, { accept: true });
  const live = await backendFor(t, broker.tcpPort, { accept: true });
  tolerateReset(dying);
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');
  const dyingLink = linkOf(broker, dying);
  const { client } = await joinAny(t, broker, [dying, live], 'flooder');

  dying.socket.pause();
  const body = 'z'.repeat(256 * KiB);
  let sent = 0;
  for (let round = 0; dyingLink.heldEvents < 3; round++) {
    assert.ok(round < 400, `the paused backend's link never held 3 lines (unsent ${dyingLink.unsentBytes})`);
    const target = broker.broker.stats.messagesOut.new_message + 8;
    for (let k = 0; k < 8; k++) client.ws.send(`m${sent++} ${body}`);
    await waitUntil(() => broker.broker.stats.messagesOut.new_message >= target, 'the broker handled the messages');
  }
  const held = dyingLink.heldEvents;
  t.diagnostic(`${sent} messages sent; the paused backend's link holds ${held} unsent, ${dyingLink.unsentBytes} bytes in all`);

  dying.kill();
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the dead backend left the pool');
  // Round-robin gave the dying backend every other message. Those its socket took are lost with it;
  // the last `held` of its share, never written, must reach the live backend.
  const received = new Set<number>();
  const missing = (): number[] => Array.from({ length: sent }, (_, i) => i).filter((i) => !received.has(i));
  const dyingShare = (parity: number): number[] => Array.from({ length: sent }, (_, i) => i).filter((i) => i % 2 === parity);
  await waitUntil(
    () => {
      for (const l of takeAll(live, (x) => x.action === 'new_message')) received.add(Number(tagOf(l.params.message).slice(1)));
      const gone = missing();
      const share = dyingShare(gone[0] ?? 0);
      return gone.length === share.length - held && gone.every((i, k) => share[k] === i);
    },
    `the held events reached the live backend (missing: ${missing().join(', ')})`,
    10_000,
  );
  assert.equal(broker.broker.stats.queue.dropped, 0);
});

/** `m12` from `m12 zzzz...`. */
function tagOf(message: unknown): string {
  return String(message).split(' ')[0] ?? '';
}
