import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventQueue } from '../../src/queue/event-queue';

const event = (line: string) => ({ line, affinity: 0 });

describe('EventQueue', () => {
  test('past its byte cap the oldest events go, in order, until the new one fits', () => {
    const q = new EventQueue(100, 10);
    q.push(event('aaaa'));
    q.push(event('bbbb'));
    assert.equal(q.bytes, 8);
    assert.equal(q.push(event('cc')), 0, '10 bytes fit');
    assert.equal(q.push(event('ddddddd')), 2, 'the two oldest events make room for seven bytes');
    assert.equal(q.bytes, 9);
    assert.equal(q.dropped, 2);
    assert.deepEqual([q.shift()?.line, q.shift()?.line], ['cc', 'ddddddd']);
    assert.equal(q.bytes, 0);
  });

  test('an event larger than the byte cap is dropped itself, and nothing queued is lost for it', () => {
    const q = new EventQueue(100, 10);
    q.push(event('keep'));
    assert.equal(q.push(event('x'.repeat(11))), 1);
    assert.equal(q.length, 1);
    assert.equal(q.peek()?.line, 'keep');
    assert.equal(q.dropped, 1);
  });

  test('past its entry count the oldest goes, and the bytes follow', () => {
    const q = new EventQueue(2, 100);
    q.push(event('a'));
    q.push(event('bb'));
    assert.equal(q.push(event('ccc')), 1);
    assert.deepEqual([q.shift()?.line, q.shift()?.line], ['bb', 'ccc']);
    assert.equal(q.bytes, 0);
  });

  test('a queue of size 0 drops everything', () => {
    const q = new EventQueue(0, 100);
    assert.equal(q.push(event('a')), 1);
    assert.equal(q.length, 0);
    assert.equal(q.dropped, 1);
  });
});
