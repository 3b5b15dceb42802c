import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RingBuffer } from '../../src/queue/ring-buffer';
import { prng } from '../helpers/prng';

/** The obvious implementation, to compare against. */
class ArrayModel<T> {
  items: T[] = [];
  dropped = 0;
  constructor(readonly capacity: number) {}

  push(item: T): T | undefined {
    if (this.capacity === 0) {
      this.dropped++;
      return item;
    }
    let out: T | undefined;
    if (this.items.length === this.capacity) {
      out = this.items.shift();
      this.dropped++;
    }
    this.items.push(item);
    return out;
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  peek(): T | undefined {
    return this.items[0];
  }
}

function drain<T>(ring: RingBuffer<T>): T[] {
  const out: T[] = [];
  for (let item = ring.shift(); item !== undefined; item = ring.shift()) out.push(item);
  return out;
}

describe('RingBuffer', () => {
  test('empty: shift and peek give undefined, length 0, nothing dropped', () => {
    const ring = new RingBuffer<string>(4);
    assert.equal(ring.length, 0);
    assert.equal(ring.capacity, 4);
    assert.equal(ring.shift(), undefined);
    assert.equal(ring.peek(), undefined);
    assert.equal(ring.dropped, 0);
    assert.equal(ring.length, 0, 'shift on empty does not go negative');
  });

  test('fills to capacity without dropping, FIFO', () => {
    const ring = new RingBuffer<number>(5);
    for (let i = 1; i <= 5; i++) {
      assert.equal(ring.push(i), undefined);
      assert.equal(ring.length, i);
      assert.equal(ring.peek(), 1);
    }
    assert.equal(ring.dropped, 0);
    assert.deepEqual(drain(ring), [1, 2, 3, 4, 5]);
    assert.equal(ring.length, 0);
  });

  test('full: push returns the dropped oldest entry and counts it', () => {
    const ring = new RingBuffer<string>(3);
    ring.push('a');
    ring.push('b');
    ring.push('c');
    assert.equal(ring.push('d'), 'a');
    assert.equal(ring.dropped, 1);
    assert.equal(ring.length, 3);
    assert.equal(ring.peek(), 'b');
    assert.equal(ring.push('e'), 'b');
    assert.equal(ring.push('f'), 'c');
    assert.equal(ring.push('g'), 'd');
    assert.equal(ring.dropped, 4);
    assert.equal(ring.length, 3);
    assert.deepEqual(drain(ring), ['e', 'f', 'g']);
    assert.equal(ring.dropped, 4, 'shifting is not dropping');
  });

  test('peek leaves the entry in place', () => {
    const ring = new RingBuffer<number>(2);
    ring.push(7);
    assert.equal(ring.peek(), 7);
    assert.equal(ring.peek(), 7);
    assert.equal(ring.length, 1);
    assert.equal(ring.shift(), 7);
    assert.equal(ring.peek(), undefined);
  });

  test('falsy entries are kept like any other', () => {
    const ring = new RingBuffer<number | string | null>(3);
    ring.push(0);
    ring.push('');
    ring.push(null);
    assert.equal(ring.length, 3);
    assert.equal(ring.shift(), 0);
    assert.equal(ring.shift(), '');
    assert.equal(ring.shift(), null);
    assert.equal(ring.length, 0);
  });

  test('capacity 1', () => {
    const ring = new RingBuffer<number>(1);
    assert.equal(ring.push(1), undefined);
    assert.equal(ring.push(2), 1);
    assert.equal(ring.push(3), 2);
    assert.equal(ring.length, 1);
    assert.equal(ring.dropped, 2);
    assert.equal(ring.shift(), 3);
    assert.equal(ring.shift(), undefined);
  });

  test('capacity 0 holds nothing: every push is a counted drop', () => {
    const ring = new RingBuffer<string>(0);
    for (let i = 0; i < 10; i++) {
      assert.equal(ring.push(`e${i}`), `e${i}`);
      assert.equal(ring.length, 0);
      assert.equal(ring.peek(), undefined);
      assert.equal(ring.shift(), undefined);
    }
    assert.equal(ring.dropped, 10);
  });

  test('invalid capacity throws', () => {
    for (const bad of [-1, -100, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.throws(() => new RingBuffer(bad), RangeError, `capacity ${bad}`);
    }
  });

  test('wrap-around order over many fill/drain cycles', () => {
    const ring = new RingBuffer<number>(7);
    let next = 0;
    let expectedHead = 0;
    for (let cycle = 0; cycle < 200; cycle++) {
      // Push a few, shift a few: head and tail walk around the slots many times.
      const pushes = (cycle % 5) + 1;
      for (let k = 0; k < pushes && ring.length < ring.capacity; k++) ring.push(next++);
      const shifts = (cycle % 3) + 1;
      for (let k = 0; k < shifts && ring.length > 0; k++) assert.equal(ring.shift(), expectedHead++);
    }
    assert.deepEqual(drain(ring), Array.from({ length: next - expectedHead }, (_, k) => expectedHead + k));
    assert.equal(ring.dropped, 0);
  });

  for (const capacity of [1, 2, 3, 7, 16]) {
    test(`random pushes and shifts match an array model (capacity ${capacity})`, () => {
      const rand = prng(capacity * 7919);
      const ring = new RingBuffer<number>(capacity);
      const model = new ArrayModel<number>(capacity);
      for (let op = 0; op < 20_000; op++) {
        const r = rand();
        if (r < 0.55) {
          assert.equal(ring.push(op), model.push(op), `push at op ${op}`);
        } else if (r < 0.95) {
          assert.equal(ring.shift(), model.shift(), `shift at op ${op}`);
        } else {
          assert.equal(ring.peek(), model.peek(), `peek at op ${op}`);
        }
        assert.equal(ring.length, model.items.length, `length at op ${op}`);
        assert.equal(ring.dropped, model.dropped, `dropped at op ${op}`);
      }
      assert.deepEqual(drain(ring), model.items);
    });
  }

  test('memory does not grow: length never exceeds capacity over a long overflow', () => {
    const ring = new RingBuffer<number>(10);
    for (let i = 0; i < 100_000; i++) {
      ring.push(i);
      assert.ok(ring.length <= 10);
    }
    assert.equal(ring.dropped, 100_000 - 10);
    assert.deepEqual(drain(ring), Array.from({ length: 10 }, (_, k) => 99_990 + k));
  });
});
