import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BackendLink } from '../../src/backends/backend-link';
import type { Balancer } from '../../src/backends/balancer';
import { ClientAffinityBalancer } from '../../src/backends/client-affinity-balancer';
import { hash32 } from '../../src/backends/hash';
import { RoundRobinBalancer } from '../../src/backends/round-robin-balancer';
import { fakeLink } from '../helpers/fake-link';
import { prng, randomInt, randomString } from '../helpers/prng';

function ids(links: (BackendLink | undefined)[]): (number | undefined)[] {
  return links.map((l) => l?.id);
}

/** A seeded set of distinct client ids, as the gateway would hash them. */
function randomKeys(count: number, seed: number): string[] {
  const rand = prng(seed);
  const keys = new Set<string>();
  while (keys.size < count) keys.add(randomString(rand, randomInt(rand, 4, 36)));
  return [...keys];
}

describe('hash32', () => {
  /** The same function written out with BigInt arithmetic, as an independent reference. */
  function referenceHash(text: string): number {
    const M = 0xffffffffn;
    const mul = (a: bigint, b: bigint) => (a * b) & M;
    let h = 0x811c9dc5n;
    for (let i = 0; i < text.length; i++) {
      h ^= BigInt(text.charCodeAt(i));
      h = mul(h, 0x01000193n);
    }
    h ^= h >> 16n;
    h = mul(h, 0x85ebca6bn);
    h ^= h >> 13n;
    h = mul(h, 0xc2b2ae35n);
    h ^= h >> 16n;
    return Number(h);
  }

  test('is FNV-1a over UTF-16 code units with the murmur3 finalizer', () => {
    for (const text of ['', 'a', 'client-1', 'client-2', '€uro', '😀', 'x'.repeat(1000), ...randomKeys(500, 1)]) {
      assert.equal(hash32(text), referenceHash(text), JSON.stringify(text));
    }
  });

  test('is an unsigned 32-bit integer and deterministic', () => {
    for (const key of randomKeys(2000, 2)) {
      const h = hash32(key);
      assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, `${key}: ${h}`);
      assert.equal(hash32(key), h);
    }
  });

  test('one changed character flips about half the bits', () => {
    let bits = 0;
    let pairs = 0;
    for (let i = 0; i < 2000; i++) {
      let x = (hash32(`client-${i}`) ^ hash32(`client-${i + 1}`)) >>> 0;
      while (x) {
        bits += x & 1;
        x >>>= 1;
      }
      pairs++;
    }
    const mean = bits / pairs;
    assert.ok(mean > 14 && mean < 18, `mean flipped bits ${mean}`);
  });
});

describe('RoundRobinBalancer', () => {
  test('no links: undefined', () => {
    const rr = new RoundRobinBalancer();
    assert.equal(rr.pick(), undefined);
    rr.update([]);
    assert.equal(rr.pick(), undefined);
  });

  test('cycles through the links in order, evenly', () => {
    const links = [fakeLink(1), fakeLink(2), fakeLink(3)];
    const rr = new RoundRobinBalancer();
    rr.update(links);
    const picks = Array.from({ length: 300 }, () => rr.pick());
    assert.deepEqual(ids(picks.slice(0, 7)), [1, 2, 3, 1, 2, 3, 1]);
    const counts = new Map<number | undefined, number>();
    for (const p of picks) counts.set(p?.id, (counts.get(p?.id) ?? 0) + 1);
    assert.deepEqual([...counts.entries()].sort(), [
      [1, 100],
      [2, 100],
      [3, 100],
    ]);
  });

  test('ignores the affinity', () => {
    const rr = new RoundRobinBalancer();
    rr.update([fakeLink(1), fakeLink(2)]);
    const balancer: Balancer = rr;
    assert.deepEqual(ids([balancer.pick(42), balancer.pick(42), balancer.pick(0)]), [1, 2, 1]);
  });

  test('a single link gets everything', () => {
    const rr = new RoundRobinBalancer();
    const only = fakeLink(9);
    rr.update([only]);
    for (let i = 0; i < 10; i++) assert.equal(rr.pick(), only);
  });

  test('skips links above their high-water mark', () => {
    const links = [fakeLink(1), fakeLink(2, true), fakeLink(3)];
    const rr = new RoundRobinBalancer();
    rr.update(links);
    assert.deepEqual(ids(Array.from({ length: 6 }, () => rr.pick())), [1, 3, 1, 3, 1, 3]);
  });

  test('undefined when every link is above the mark, and back when one drains', () => {
    const links = [fakeLink(1, true), fakeLink(2, true), fakeLink(3, true)];
    const rr = new RoundRobinBalancer();
    rr.update(links);
    for (let i = 0; i < 5; i++) assert.equal(rr.pick(), undefined);
    (links[1] as { aboveHighWaterMark: boolean }).aboveHighWaterMark = false;
    assert.equal(rr.pick()?.id, 2);
    assert.equal(rr.pick()?.id, 2);
  });

  test('a link crossing the mark mid-cycle is passed over, then used again once below it', () => {
    const a = fakeLink(1);
    const b = fakeLink(2);
    const c = fakeLink(3);
    const rr = new RoundRobinBalancer();
    rr.update([a, b, c]);
    assert.equal(rr.pick(), a);
    b.aboveHighWaterMark = true;
    assert.equal(rr.pick(), c);
    assert.equal(rr.pick(), a);
    b.aboveHighWaterMark = false;
    assert.equal(rr.pick(), b);
    assert.equal(rr.pick(), c);
  });

  test('update replaces the set of links', () => {
    const rr = new RoundRobinBalancer();
    rr.update([fakeLink(1), fakeLink(2), fakeLink(3)]);
    rr.pick();
    rr.pick();
    rr.update([fakeLink(4), fakeLink(5)]);
    const seen = new Set(ids(Array.from({ length: 10 }, () => rr.pick())));
    assert.deepEqual([...seen].sort(), [4, 5]);
  });
});

describe('ClientAffinityBalancer', () => {
  test('no links: undefined', () => {
    const ca = new ClientAffinityBalancer();
    assert.equal(ca.pick(hash32('someone')), undefined);
    ca.update([]);
    assert.equal(ca.pick(hash32('someone')), undefined);
    ca.update([fakeLink(1)]);
    ca.update([]);
    assert.equal(ca.pick(hash32('someone')), undefined);
  });

  test('a single link owns every key, including affinity 0 and 0xffffffff', () => {
    const only = fakeLink(1);
    const ca = new ClientAffinityBalancer();
    ca.update([only]);
    for (const a of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, ...randomKeys(200, 3).map(hash32)]) assert.equal(ca.pick(a), only);
  });

  test('the same affinity always gets the same link', () => {
    const links = [fakeLink(1), fakeLink(2), fakeLink(3), fakeLink(4)];
    const ca = new ClientAffinityBalancer();
    ca.update(links);
    for (const key of randomKeys(1000, 4)) {
      const first = ca.pick(hash32(key));
      assert.ok(first);
      for (let k = 0; k < 3; k++) assert.equal(ca.pick(hash32(key)), first, key);
    }
  });

  test('the owner does not depend on the order links are given in', () => {
    const links = [fakeLink(1), fakeLink(2), fakeLink(3), fakeLink(4)];
    const forward = new ClientAffinityBalancer();
    forward.update(links);
    const backward = new ClientAffinityBalancer();
    backward.update([...links].reverse());
    for (const key of randomKeys(2000, 5)) assert.equal(backward.pick(hash32(key)), forward.pick(hash32(key)), key);
  });

  test('removing one of 3 links moves only the keys it owned', () => {
    const [a, b, c] = [fakeLink(11), fakeLink(12), fakeLink(13)];
    const ca = new ClientAffinityBalancer();
    ca.update([a, b, c]);
    const keys = randomKeys(5000, 6);
    const before = new Map(keys.map((k) => [k, ca.pick(hash32(k))]));
    ca.update([a, c]);
    let moved = 0;
    for (const key of keys) {
      const was = before.get(key);
      const now = ca.pick(hash32(key));
      assert.ok(now === a || now === c, key);
      if (was === b) moved++;
      else assert.equal(now, was, `${key} moved from ${was?.id} to ${now?.id} though its owner stayed`);
    }
    assert.ok(moved > 5000 / 3 * 0.75 && moved < 5000 / 3 * 1.25, `b owned ${moved} of 5000 keys`);

    // And when b comes back, every key returns to where it was.
    ca.update([a, b, c]);
    for (const key of keys) assert.equal(ca.pick(hash32(key)), before.get(key), key);
  });

  test('adding a fourth link moves keys only onto it', () => {
    const links = [fakeLink(21), fakeLink(22), fakeLink(23)];
    const added = fakeLink(24);
    const ca = new ClientAffinityBalancer();
    ca.update(links);
    const keys = randomKeys(5000, 7);
    const before = new Map(keys.map((k) => [k, ca.pick(hash32(k))]));
    ca.update([...links, added]);
    for (const key of keys) {
      const now = ca.pick(hash32(key));
      if (now !== added) assert.equal(now, before.get(key), key);
    }
  });

  test('10k random keys over 4 links land within ±25% of even', () => {
    const links = [fakeLink(1), fakeLink(2), fakeLink(3), fakeLink(4)];
    const ca = new ClientAffinityBalancer();
    ca.update(links);
    const counts = new Map<BackendLink, number>(links.map((l) => [l, 0]));
    const N = 10_000;
    for (const key of randomKeys(N, 8)) {
      const link = ca.pick(hash32(key));
      assert.ok(link);
      counts.set(link, (counts.get(link) ?? 0) + 1);
    }
    for (const [link, count] of counts) {
      assert.ok(count >= (N / 4) * 0.75 && count <= (N / 4) * 1.25, `link ${link.id} got ${count} of ${N}`);
    }
  });

  test('the spread is even for other link ids too', () => {
    for (const base of [100, 5000, 123456]) {
      const links = [fakeLink(base), fakeLink(base + 1), fakeLink(base + 2), fakeLink(base + 3)];
      const ca = new ClientAffinityBalancer();
      ca.update(links);
      const counts = new Map<BackendLink, number>(links.map((l) => [l, 0]));
      for (const key of randomKeys(10_000, base)) {
        const link = ca.pick(hash32(key)) as BackendLink;
        counts.set(link, (counts.get(link) ?? 0) + 1);
      }
      for (const [link, count] of counts) assert.ok(count >= 1875 && count <= 3125, `link ${link.id} got ${count}`);
    }
  });

  test('an owner above its high-water mark is still picked, never another link (its hard limit bounds it)', () => {
    const links = [fakeLink(1), fakeLink(2), fakeLink(3)];
    const ca = new ClientAffinityBalancer();
    ca.update(links);
    const keys = randomKeys(1000, 9);
    const owner = new Map(keys.map((k) => [k, ca.pick(hash32(k))]));
    const busy = links[0] as (typeof links)[number];
    busy.aboveHighWaterMark = true;
    for (const key of keys) {
      const picked = ca.pick(hash32(key));
      assert.equal(picked, owner.get(key), key);
    }
    busy.aboveHighWaterMark = false;
    for (const key of keys) assert.equal(ca.pick(hash32(key)), owner.get(key), key);
  });
});
