import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NAME, MAX_ROOM, RateLimit, clean, nameOf, roomOf } from '../../src/demo/chat-backend';

test('clean: control characters become spaces, the ends are trimmed, the length is cut in code points', () => {
  assert.equal(clean('  hi\tthere\n\u0000x\u007f ', 100), 'hi there  x');
  assert.equal(clean('', 10), '');
  assert.equal(clean(' \n\t ', 10), '');
  // Five emoji are ten UTF-16 units: cutting at three keeps three whole ones, no lone surrogate.
  const cut = clean('😀😀😀😀😀', 3);
  assert.equal(cut, '😀😀😀');
  assert.ok(cut.isWellFormed());
});

test('roomOf: /room/<name> names the room; anything the page would not send is no room', () => {
  assert.equal(roomOf('/room/lobby'), 'lobby');
  assert.equal(roomOf('/room/café ☕/and more'), 'café ☕/and more');
  assert.equal(roomOf('/room/' + 'r'.repeat(MAX_ROOM)), 'r'.repeat(MAX_ROOM));
  for (const url of ['/', '/lobby', '/rooms/lobby', '/room/', '/room/ lobby', '/room/lobby ', '/room/a\tb', '/room/' + 'r'.repeat(MAX_ROOM + 1)]) {
    assert.equal(roomOf(url), undefined, JSON.stringify(url));
  }
});

test('nameOf: the cleaned ?name=, cut to its limit, or guest', () => {
  assert.equal(nameOf('alice'), 'alice');
  assert.equal(nameOf(' bob\n'), 'bob');
  assert.equal(nameOf('x'.repeat(MAX_NAME + 10)), 'x'.repeat(MAX_NAME));
  assert.equal(nameOf(undefined), 'guest');
  assert.equal(nameOf('\u0001\u0002'), 'guest');
});

test('RateLimit: a burst at once, then the rate; each client has its own bucket; forget starts a client over', () => {
  let now = 1000;
  const limit = new RateLimit(3, 2, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => limit.take('a')), [true, true, true, false]);
  assert.equal(limit.take('b'), true, 'another client is not limited by the first');
  now += 499;
  assert.equal(limit.take('a'), false, 'not yet one token back after 499 ms at 2/s');
  now += 1;
  assert.equal(limit.take('a'), true, 'one token back after 500 ms');
  assert.equal(limit.take('a'), false);
  now += 60_000;
  assert.deepEqual([1, 2, 3, 4].map(() => limit.take('a')), [true, true, true, false], 'a long pause refills only up to the burst');
  limit.forget('a');
  assert.deepEqual([1, 2, 3, 4].map(() => limit.take('a')), [true, true, true, false], 'forgotten: a full burst again');
});
