import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateHistory } from '../../src/metrics/status-page';

test('RateHistory: the first reading is the baseline; each next one is a rate over the time that really passed', () => {
  const rates = new RateHistory(10);
  rates.record(10_000, 7, 3);
  assert.deepEqual([rates.in, rates.out, rates.until], [[], [], 10_000]);
  rates.record(11_000, 57, 3);
  rates.record(13_500, 107, 28);
  // A timer that ran 1.5 s late: 50 in over 2.5 s is 20/s, not 50/s.
  assert.deepEqual(rates.in, [50, 20]);
  assert.deepEqual(rates.out, [0, 10]);
  assert.equal(rates.until, 13_500);
  rates.record(14_500, 108, 29);
  rates.record(15_500, 108, 29);
  assert.deepEqual(rates.in.slice(2), [1, 0]);
});

test('RateHistory: rates are kept to one decimal, and at most `capacity` samples, the oldest dropped first', () => {
  const rates = new RateHistory(3);
  rates.record(1, 0, 0);
  rates.record(3001, 1, 2);
  assert.deepEqual([rates.in, rates.out], [[0.3], [0.7]]);
  for (let i = 2; i <= 6; i++) rates.record(1 + 3000 * i, i * 10, 0);
  assert.equal(rates.in.length, 3);
  assert.equal(rates.out.length, 3);
  // The last three intervals: 30 -> 40 -> 50 -> 60 in 3 s each.
  assert.deepEqual(rates.in, [3.3, 3.3, 3.3]);
});
