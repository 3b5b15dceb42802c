/**
 * Balancer.pick over 4 fake links: round robin, and client affinity
 * (consistent hashing, 4 x 128 ring points, a binary search per pick).
 * Every call makes 1024 picks; affinities are hash32 of 1024 client ids,
 * computed once (the broker hashes a client id once, at upgrade).
 * hash32 of a uuid is measured too, as that once-per-connection cost.
 *
 *   node dist/bench/micro/balancer.bench.js [--mitata]
 */
import assert from 'node:assert/strict';
import type { BackendLink } from '../../src/backends/backend-link';
import type { Balancer } from '../../src/backends/balancer';
import { ClientAffinityBalancer } from '../../src/backends/client-affinity-balancer';
import { hash32 } from '../../src/backends/hash';
import { RoundRobinBalancer } from '../../src/backends/round-robin-balancer';
import { do_not_optimize, mainOf, type MicroSuite } from './common';

const LINKS = 4;
const PICKS = 1024;

export function fakeLinks(n = LINKS): BackendLink[] {
  return Array.from({ length: n }, (_, i) => ({ id: i + 1, aboveHighWaterMark: false }) as unknown as BackendLink);
}

function clientIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${(0x5b0c6b55 + i * 7919).toString(16).padStart(8, '0')}-7a3e-4c4e-9d0f-${(i * 2654435761 >>> 0).toString(16).padStart(12, '0')}`);
}

export function balancerSuite(): MicroSuite {
  const links = fakeLinks();
  const rr: Balancer = new RoundRobinBalancer(); // called as the pool does, through the interface
  rr.update(links);
  const ca: Balancer = new ClientAffinityBalancer();
  ca.update(links);

  const ids = clientIds(PICKS);
  const affinities = Uint32Array.from(ids, hash32);

  // Sanity: every pick is a link; round robin cycles; affinity is stable and spreads.
  const seen = new Map<BackendLink, number>();
  for (let i = 0; i < PICKS; i++) {
    assert.equal(rr.pick(0), links[i % LINKS]);
    const owner = ca.pick(affinities[i] as number);
    assert.ok(owner !== undefined && links.includes(owner));
    assert.equal(ca.pick(affinities[i] as number), owner);
    seen.set(owner, (seen.get(owner) ?? 0) + 1);
  }
  assert.equal(seen.size, LINKS, 'affinity spreads clients over every backend');

  // The same with one of the four backed up.
  const busyLinks = fakeLinks();
  (busyLinks[1] as unknown as { aboveHighWaterMark: boolean }).aboveHighWaterMark = true;
  const rrBusy: Balancer = new RoundRobinBalancer();
  rrBusy.update(busyLinks);

  let sink: BackendLink | undefined;
  let h = 0;
  return {
    name: 'balancer',
    pairs: [],
    singles: [
      {
        key: 'balancer.roundRobin',
        name: 'RoundRobinBalancer.pick (4 links)',
        items: PICKS,
        unit: 'pick',
        fn: () => {
          for (let i = 0; i < PICKS; i++) sink = rr.pick(0);
          do_not_optimize(sink);
        },
      },
      {
        key: 'balancer.roundRobinBusy',
        name: 'RoundRobinBalancer.pick (1 of 4 backed up)',
        items: PICKS,
        unit: 'pick',
        fn: () => {
          for (let i = 0; i < PICKS; i++) sink = rrBusy.pick(0);
          do_not_optimize(sink);
        },
      },
      {
        key: 'balancer.clientAffinity',
        name: 'ClientAffinityBalancer.pick (4 links x 128 points)',
        items: PICKS,
        unit: 'pick',
        fn: () => {
          for (let i = 0; i < PICKS; i++) sink = ca.pick(affinities[i] as number);
          do_not_optimize(sink);
        },
      },
      {
        key: 'hash32',
        name: 'hash32(client uuid), once per connection',
        items: PICKS,
        unit: 'hash',
        fn: () => {
          for (let i = 0; i < PICKS; i++) h ^= hash32(ids[i] as string);
          do_not_optimize(h);
        },
      },
    ],
  };
}

if (require.main === module) mainOf(balancerSuite);
