import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { PendingRequests, type PendingEntry } from '../../src/admission/pending-requests';

/** Whoever holds a request: a backend link in the broker, any object here. */
interface Holder {
  id: number;
}

interface Entry extends PendingEntry<Holder> {
  name: string;
}

const holder = (id: number): Holder => ({ id });

const TIMEOUT = 100;

/** PendingRequests on mock timers and a fake clock that move together. */
function setup(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 1_000;
  const timedOut: string[] = [];
  const entries: Entry[] = [];
  const pending = new PendingRequests<Holder, Entry>(
    () => now,
    (id, entry) => {
      assert.equal(entry.name, id, 'onTimeout gets the entry that was added under this id');
      entries.push(entry);
      timedOut.push(id);
    },
  );
  t.after(() => pending.stop());
  return {
    pending,
    timedOut,
    entries,
    get now() {
      return now;
    },
    /** Moves the clock and the mock timers forward by `ms`. */
    advance(ms: number) {
      now += ms;
      t.mock.timers.tick(ms);
    },
    /** Adds a request that times out TIMEOUT ms from now. */
    add(id: string, by: Holder): Entry {
      const entry: Entry = { name: id, holder: by, deadline: now + TIMEOUT };
      pending.add(id, entry);
      return entry;
    },
  };
}

describe('PendingRequests', () => {
  test('take removes and returns the entry once', (t) => {
    const s = setup(t);
    const link = holder(1);
    const a = s.add('a', link);
    s.add('b', link);
    assert.equal(s.pending.size, 2);
    assert.equal(s.pending.take('a'), a);
    assert.equal(s.pending.size, 1);
    assert.equal(s.pending.take('a'), undefined);
    assert.equal(s.pending.take('nope'), undefined);
    assert.equal(s.pending.size, 1);
  });

  test('heldBy lists one holder\'s requests oldest first, and follows a reassigned holder', (t) => {
    const s = setup(t);
    const l1 = holder(1);
    const l2 = holder(2);
    const a = s.add('a', l1);
    const b = s.add('b', l2);
    const c = s.add('c', l1);
    const d = s.add('d', l2);
    assert.deepEqual(s.pending.heldBy(l1), [['a', a], ['c', c]]);
    assert.deepEqual(s.pending.heldBy(l2), [['b', b], ['d', d]]);
    assert.deepEqual(s.pending.heldBy(holder(3)), []);
    assert.equal(s.pending.size, 4, 'heldBy does not remove');

    // Sent again on another backend: the entry's holder changes in place.
    a.holder = l2;
    assert.deepEqual(s.pending.heldBy(l1), [['c', c]]);
    assert.deepEqual(s.pending.heldBy(l2), [['a', a], ['b', b], ['d', d]]);

    s.pending.take('b');
    assert.deepEqual(s.pending.heldBy(l2), [['a', a], ['d', d]]);
  });

  test('takeAll returns everything in order and empties it; nothing times out afterwards', (t) => {
    const s = setup(t);
    const link = holder(1);
    const a = s.add('a', link);
    s.advance(10);
    const b = s.add('b', link);
    assert.deepEqual(s.pending.takeAll(), [['a', a], ['b', b]]);
    assert.equal(s.pending.size, 0);
    assert.deepEqual(s.pending.takeAll(), []);
    s.advance(10 * TIMEOUT);
    assert.deepEqual(s.timedOut, []);
  });

  test('timeouts fire at each deadline, in deadline order', (t) => {
    const s = setup(t);
    const link = holder(1);
    s.add('a', link); // deadline 1100
    s.advance(10);
    s.add('b', link); // 1110
    s.advance(10);
    s.add('c', link); // 1120
    s.add('d', link); // 1120
    s.advance(79); // 1099
    assert.deepEqual(s.timedOut, []);
    s.advance(1); // 1100
    assert.deepEqual(s.timedOut, ['a']);
    assert.equal(s.pending.size, 3);
    s.advance(9); // 1109
    assert.deepEqual(s.timedOut, ['a']);
    s.advance(1); // 1110
    assert.deepEqual(s.timedOut, ['a', 'b']);
    s.advance(9);
    assert.deepEqual(s.timedOut, ['a', 'b']);
    s.advance(1); // 1120: both c and d
    assert.deepEqual(s.timedOut, ['a', 'b', 'c', 'd']);
    assert.equal(s.pending.size, 0);
    assert.equal(s.pending.take('a'), undefined, 'a timed-out request is gone');
  });

  test('a clock jump past every deadline times them all out, oldest first', (t) => {
    const s = setup(t);
    const link = holder(1);
    for (const id of ['r1', 'r2', 'r3', 'r4', 'r5']) {
      s.add(id, link);
      s.advance(3);
    }
    s.advance(10 * TIMEOUT);
    assert.deepEqual(s.timedOut, ['r1', 'r2', 'r3', 'r4', 'r5']);
  });

  test('a request taken before its deadline never times out', (t) => {
    const s = setup(t);
    const link = holder(1);
    s.add('a', link); // 1100
    s.advance(20);
    s.add('b', link); // 1120
    s.advance(20);
    s.add('c', link); // 1140
    s.advance(20);
    assert.ok(s.pending.take('a'), 'a is taken while its timer is the armed one');
    assert.ok(s.pending.take('c'));
    s.advance(39); // 1099
    assert.deepEqual(s.timedOut, []);
    s.advance(1); // 1100: the timer for a fires, finds b not yet due
    assert.deepEqual(s.timedOut, []);
    s.advance(19); // 1119
    assert.deepEqual(s.timedOut, []);
    s.advance(1); // 1120
    assert.deepEqual(s.timedOut, ['b']);
    s.advance(10 * TIMEOUT);
    assert.deepEqual(s.timedOut, ['b']);
  });

  test('a request added after all others expired gets its own timer', (t) => {
    const s = setup(t);
    const link = holder(1);
    s.add('a', link);
    s.advance(TIMEOUT);
    assert.deepEqual(s.timedOut, ['a']);
    s.advance(500);
    s.add('b', link);
    s.advance(TIMEOUT - 1);
    assert.deepEqual(s.timedOut, ['a']);
    s.advance(1);
    assert.deepEqual(s.timedOut, ['a', 'b']);
  });

  test('a request added after every earlier one was taken still times out on time', (t) => {
    const s = setup(t);
    const link = holder(1);
    s.add('a', link); // 1100; arms the timer
    s.pending.take('a');
    s.advance(50);
    s.add('b', link); // 1150
    s.advance(50); // 1100: the stale timer fires early and must re-arm for b
    assert.deepEqual(s.timedOut, []);
    s.advance(49);
    assert.deepEqual(s.timedOut, []);
    s.advance(1);
    assert.deepEqual(s.timedOut, ['b']);
  });

  test('stop cancels the timer; a later add arms a new one', (t) => {
    const s = setup(t);
    const link = holder(1);
    s.add('a', link);
    s.pending.stop();
    s.advance(10 * TIMEOUT);
    assert.deepEqual(s.timedOut, []);
    assert.equal(s.pending.size, 1, 'stop keeps the requests (takeAll removes them)');
    s.pending.take('a');
    s.add('b', link);
    s.advance(TIMEOUT);
    assert.deepEqual(s.timedOut, ['b']);
  });

  test('an onTimeout that adds a request leaves one timer, so stop() stops every timeout', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const timedOut: string[] = [];
    const link = holder(1);
    const pending: PendingRequests<Holder, Entry> = new PendingRequests<Holder, Entry>(
      () => now,
      (id) => {
        timedOut.push(id);
        // e.g. a retry, or a new request arriving from inside the callback
        if (id === 'a') pending.add('retry', { name: 'retry', holder: link, deadline: now + TIMEOUT });
      },
    );
    t.after(() => pending.stop());
    pending.add('a', { name: 'a', holder: link, deadline: 100 });
    now = 50;
    t.mock.timers.tick(50);
    pending.add('b', { name: 'b', holder: link, deadline: 150 });
    now = 100;
    t.mock.timers.tick(50); // a times out; the callback adds 'retry' (deadline 200)
    assert.deepEqual(timedOut, ['a']);
    pending.stop();
    now = 1000;
    t.mock.timers.tick(900);
    assert.deepEqual(timedOut, ['a'], 'no timeout may fire after stop()');
  });
});
