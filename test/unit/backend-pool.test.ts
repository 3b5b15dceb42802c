/**
 * The pool's rule for events another node handed over: they go to a backend
 * here or wait in this node's queue, and are never given to the bus again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendPool } from '../../src/backends/backend-pool';
import { RoundRobinBalancer } from '../../src/backends/round-robin-balancer';
import { createLogger } from '../../src/logger';

function poolWithPeers(): { pool: BackendPool; forwarded: string[] } {
  const pool = new BackendPool(new RoundRobinBalancer(), { queueSize: 10, queueBytes: 1 << 20, heartbeatInterval: 0 }, createLogger('silent'));
  const forwarded: string[] = [];
  // Another node can always take an event.
  pool.peers = { forward: (line) => (forwarded.push(line), true) };
  return { pool, forwarded };
}

test('with no backend here, this node\'s own event goes to another node', () => {
  const { pool, forwarded } = poolWithPeers();
  pool.dispatch('own\n', 1);
  assert.deepEqual(forwarded, ['own\n']);
  assert.equal(pool.queued, 0);
});

test('an event another node handed over waits in the queue here, and draining the queue does not give it back to the bus', () => {
  const { pool, forwarded } = poolWithPeers();
  pool.dispatchLocal('from a peer\n', 1);
  assert.equal(pool.queued, 1);
  pool.drainQueue();
  assert.deepEqual(forwarded, [], 'handed back to the bus: two nodes with backed-up backends would pass it to and fro');
  assert.equal(pool.queued, 1);
  // Events leave the queue oldest first: this node's own event waits behind it.
  pool.dispatch('own\n', 2);
  pool.drainQueue();
  assert.deepEqual(forwarded, []);
  assert.equal(pool.queued, 2);
});
