/**
 * RingBuffer against a plain Array used as a bounded FIFO with the same
 * drop-oldest-when-full rule (`if (arr.length === cap) arr.shift(); arr.push(x)`),
 * holding what the broker queues: `{ line, affinity }` events.
 *
 * Scenarios (each call does 1000 operations):
 *  - steady: 999-1000 queued, one push + one shift per op (never dropping);
 *  - full:   at capacity (1000, the default --queue-size), every push drops the oldest;
 *  - burst:  fill 1000 from empty, then drain all of it (no backend, then one comes back).
 *
 *   node dist/bench/micro/ring-buffer.bench.js [--mitata]
 */
import assert from 'node:assert/strict';
import { RingBuffer } from '../../src/queue/ring-buffer';
import { do_not_optimize, mainOf, type MicroCase, type MicroPair, type MicroSuite } from './common';

export const QUEUE = 1000;
const OPS = 1000;

interface Event {
  line: string;
  affinity: number;
}

/** The Array version, with RingBuffer's interface and semantics. */
export class ArrayQueue<T> {
  private readonly items: T[] = [];
  dropped = 0;
  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length;
  }

  push(item: T): T | undefined {
    let oldest: T | undefined;
    if (this.items.length === this.capacity) {
      oldest = this.items.shift();
      this.dropped++;
    }
    this.items.push(item);
    return oldest;
  }

  shift(): T | undefined {
    return this.items.shift();
  }
}

function makeEvents(n: number): Event[] {
  return Array.from({ length: n }, (_, i) => ({ line: `{"request_id":"${i.toString(36)}","action":"new_message","params":{}}\n`, affinity: (i * 2654435761) >>> 0 }));
}

/** Same operations on both, same results: the Array version is a faithful baseline. */
export function assertSameBehaviour(): void {
  const events = makeEvents(3 * QUEUE);
  const ring = new RingBuffer<Event>(QUEUE);
  const arr = new ArrayQueue<Event>(QUEUE);
  for (const e of events) assert.equal(ring.push(e), arr.push(e));
  assert.equal(ring.dropped, arr.dropped);
  for (let i = 0; i < 500; i++) {
    const e = events[i] as Event;
    assert.equal(ring.shift(), arr.shift());
    assert.equal(ring.push(e), arr.push(e));
    assert.equal(ring.shift(), arr.shift());
  }
  while (arr.length > 0) assert.equal(ring.shift(), arr.shift());
  assert.equal(ring.length, 0);
  assert.equal(ring.shift(), undefined);
}

// The two factories below are the same code on purpose: closures made at one
// source site share their type feedback in V8, and a call site that has seen
// both a RingBuffer and an Array queue would be polymorphic for both.
function ringCases(events: Event[]): { steady: MicroCase; full: MicroCase; burst: MicroCase } {
  const mask = events.length - 1; // power of two
  let seq = 0;
  let sink: Event | undefined;

  const steadyQ = new RingBuffer<Event>(QUEUE); // 999 queued: each push brings it to 1000 (never dropping), each shift back
  for (let i = 0; i < QUEUE - 1; i++) steadyQ.push(events[i & mask] as Event);
  const fullQ = new RingBuffer<Event>(QUEUE);
  for (let i = 0; i < QUEUE; i++) fullQ.push(events[i & mask] as Event);
  const burstQ = new RingBuffer<Event>(QUEUE);

  return {
    steady: {
      key: 'ring.steady.ours',
      name: 'RingBuffer: steady push+shift',
      items: OPS,
      unit: 'op',
      fn: () => {
        const q = steadyQ;
        for (let i = 0; i < OPS; i++) {
          q.push(events[seq++ & mask] as Event);
          sink = q.shift();
        }
        do_not_optimize(sink);
      },
    },
    full: {
      key: 'ring.full.ours',
      name: 'RingBuffer: full, push drops oldest',
      items: OPS,
      unit: 'op',
      fn: () => {
        const q = fullQ;
        for (let i = 0; i < OPS; i++) sink = q.push(events[seq++ & mask] as Event);
        do_not_optimize(sink);
      },
    },
    burst: {
      key: 'ring.burst.ours',
      name: `RingBuffer: fill ${QUEUE} then drain`,
      items: OPS,
      unit: 'event',
      fn: () => {
        const q = burstQ;
        for (let i = 0; i < OPS; i++) q.push(events[seq++ & mask] as Event);
        for (let e = q.shift(); e !== undefined; e = q.shift()) sink = e;
        do_not_optimize(sink);
      },
    },
  };
}

function arrayCases(events: Event[]): { steady: MicroCase; full: MicroCase; burst: MicroCase } {
  const mask = events.length - 1; // power of two
  let seq = 0;
  let sink: Event | undefined;

  const steadyQ = new ArrayQueue<Event>(QUEUE); // 999 queued: each push brings it to 1000 (never dropping), each shift back
  for (let i = 0; i < QUEUE - 1; i++) steadyQ.push(events[i & mask] as Event);
  const fullQ = new ArrayQueue<Event>(QUEUE);
  for (let i = 0; i < QUEUE; i++) fullQ.push(events[i & mask] as Event);
  const burstQ = new ArrayQueue<Event>(QUEUE);

  return {
    steady: {
      key: 'ring.steady.naive',
      name: 'Array: steady push+shift',
      items: OPS,
      unit: 'op',
      fn: () => {
        const q = steadyQ;
        for (let i = 0; i < OPS; i++) {
          q.push(events[seq++ & mask] as Event);
          sink = q.shift();
        }
        do_not_optimize(sink);
      },
    },
    full: {
      key: 'ring.full.naive',
      name: 'Array: full, push drops oldest',
      items: OPS,
      unit: 'op',
      fn: () => {
        const q = fullQ;
        for (let i = 0; i < OPS; i++) sink = q.push(events[seq++ & mask] as Event);
        do_not_optimize(sink);
      },
    },
    burst: {
      key: 'ring.burst.naive',
      name: `Array: fill ${QUEUE} then drain`,
      items: OPS,
      unit: 'event',
      fn: () => {
        const q = burstQ;
        for (let i = 0; i < OPS; i++) q.push(events[seq++ & mask] as Event);
        for (let e = q.shift(); e !== undefined; e = q.shift()) sink = e;
        do_not_optimize(sink);
      },
    },
  };
}

export function ringSuite(): MicroSuite {
  assertSameBehaviour();
  const events = makeEvents(4096);
  const ours = ringCases(events);
  const naive = arrayCases(events);
  const pairs: MicroPair[] = [
    { key: 'ring.steady', title: `steady: ${QUEUE} queued, push+shift`, ours: ours.steady, naive: naive.steady },
    { key: 'ring.full', title: `full (capacity ${QUEUE}): push drops the oldest`, ours: ours.full, naive: naive.full },
    { key: 'ring.burst', title: `burst: fill ${QUEUE}, drain ${QUEUE}`, ours: ours.burst, naive: naive.burst },
  ];
  return { name: 'ring-buffer', pairs, singles: [] };
}

if (require.main === module) mainOf(ringSuite);
