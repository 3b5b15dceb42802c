/**
 * StrandsBackend's reconnect backoff: full jitter, growing while links fail or
 * die young, and starting over only after a healthy link. The timers are
 * node:test's mock timers, so the time windows are simulated, not slept.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { StrandsBackend, type StrandsBackendOptions } from '../../src/sdk';
import { AsyncQueue } from '../helpers/async-queue';
import { FakeBroker, authFailedLine, type Peer } from '../helpers/sdk-fake-broker';

const T = { timeout: 10_000 };

interface Retry {
  delay: number;
  attempt: number;
  error: Error | undefined;
}

/** A backend on `broker` whose retries are queued as they are scheduled; setTimeout is mocked from here on. */
function backendOn(t: TestContext, broker: FakeBroker, opts: Partial<StrandsBackendOptions> = {}) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const backend = new StrandsBackend({ port: broker.port, ...opts });
  const retries = new AsyncQueue<Retry>();
  backend.on('reconnecting', (delay, attempt, error) => retries.push({ delay, attempt, error }));
  t.after(async () => {
    await backend.close();
    await broker.stop();
  });
  return { backend, retries };
}

/** A broker that refuses every backend as the real one refuses a wrong token: an error line, then close. */
function refusingBroker(): Promise<FakeBroker> {
  return FakeBroker.start((peer: Peer) => {
    peer.send(authFailedLine());
    peer.socket.end();
  });
}

test('a broker that accepts and closes at once (wrong token) is retried ever more slowly, and each failure is reported', T, async (t) => {
  t.mock.method(Math, 'random', () => 0.5); // full jitter's mean: each delay is half its ceiling
  const broker = await refusingBroker();
  const { backend, retries } = backendOn(t, broker, { token: 'wrong' });
  const failures: string[] = [];
  backend.on('auth-failed', (reason) => failures.push(reason));
  void backend.connect();

  // Count the connections a 1.5 s window sees (a backoff that started over on every connect would make about 30).
  const windowMs = 1500;
  let elapsed = 0;
  const delays: number[] = [];
  for (;;) {
    const retry = await retries.next();
    assert.equal(retry.attempt, delays.length + 1);
    assert.equal(retry.error?.message, 'authentication failed: invalid token');
    delays.push(retry.delay);
    if (elapsed + retry.delay > windowMs) break;
    elapsed += retry.delay;
    t.mock.timers.tick(retry.delay);
  }
  assert.deepEqual(delays, [50, 100, 200, 400, 800]);
  assert.equal(broker.accepted, 5, 'the first connect and four retries fit in the window');
  assert.deepEqual(failures, Array(5).fill('authentication failed: invalid token'));

  // It keeps growing to the ceiling (10 s by default), then stays there.
  for (const expected of [1600, 3200, 5000, 5000]) {
    t.mock.timers.tick(delays.at(-1) as number);
    const retry = await retries.next();
    assert.equal(retry.delay, expected);
    delays.push(retry.delay);
  }
});

test('full jitter: retry n waits random(0, min(max, min * 2^(n-1)))', T, async (t) => {
  const draws = [0, 0.25, 0.999, 0.5, 0.1, 0.75];
  t.mock.method(Math, 'random', () => draws.shift() ?? 0.5);
  const broker = await FakeBroker.start((peer) => peer.kill());
  const { backend, retries } = backendOn(t, broker, { minBackoffMs: 100, maxBackoffMs: 1000 });
  void backend.connect();
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const retry = await retries.next();
    delays.push(retry.delay);
    t.mock.timers.tick(retry.delay);
  }
  // ceilings 100, 200, 400, 800, 1000, 1000
  assert.deepEqual(delays, [0, 50, 400, 400, 100, 750]);
});

test('the backoff starts over only after a link stayed up healthyAfterMs without an authentication failure', T, async (t) => {
  t.mock.method(Math, 'random', () => 1); // each delay is its ceiling
  const broker = await FakeBroker.start();
  const { backend, retries } = backendOn(t, broker, { minBackoffMs: 100, maxBackoffMs: 10_000, healthyAfterMs: 3000 });
  /** The broker's end of the next link, once the backend too has seen it open. */
  const nextLink = async (delay: number): Promise<Peer> => {
    const opened = once(backend, 'connect');
    t.mock.timers.tick(delay);
    await opened;
    return broker.peers.next();
  };
  void backend.connect();
  let peer = await broker.peers.next();

  // Links that die young: the delay grows.
  peer.kill();
  let retry = await retries.next();
  assert.deepEqual([retry.delay, retry.attempt], [100, 1]);
  peer = await nextLink(retry.delay);
  t.mock.timers.tick(2999);
  peer.kill();
  retry = await retries.next();
  assert.deepEqual([retry.delay, retry.attempt], [200, 2]);

  // A link up for healthyAfterMs: the next failure starts from the minimum again.
  peer = await nextLink(retry.delay);
  t.mock.timers.tick(3000);
  peer.kill();
  retry = await retries.next();
  assert.deepEqual([retry.delay, retry.attempt], [100, 1]);

  // Up that long but then refused (a broker waiting for an auth line that never came): no fresh start.
  peer = await nextLink(retry.delay);
  t.mock.timers.tick(5000);
  peer.send(authFailedLine('no auth line within 5000 ms'));
  peer.socket.end();
  retry = await retries.next();
  assert.deepEqual([retry.delay, retry.attempt, retry.error?.message], [200, 2, 'authentication failed: no auth line within 5000 ms']);

  // Connections refused outright count as failures too.
  broker.stopListening();
  t.mock.timers.tick(retry.delay);
  retry = await retries.next();
  assert.deepEqual([retry.delay, retry.attempt, (retry.error as NodeJS.ErrnoException).code], [400, 3, 'ECONNREFUSED']);
});

test('an authentication failure reaches auth-failed and onError; with neither listening it is printed', T, async (t) => {
  const printed = t.mock.method(console, 'error', () => {});
  const broker = await refusingBroker();
  const { backend, retries } = backendOn(t, broker, { token: 'wrong' });
  const errors = new AsyncQueue<string>();
  backend.onError((error) => errors.push(error));
  void backend.connect();
  assert.equal(await errors.next(), 'authentication failed: invalid token');
  await retries.next();
  assert.equal(printed.mock.callCount(), 0, 'onError heard it');

  const quiet = new StrandsBackend({ port: broker.port, token: 'wrong', reconnect: false });
  t.after(() => quiet.close());
  const down = new Promise((resolve) => quiet.once('disconnect', resolve));
  await quiet.connect();
  assert.equal(((await down) as Error).message, 'authentication failed: invalid token');
  assert.equal(printed.mock.callCount(), 1);
  assert.match(String(printed.mock.calls[0]?.arguments[0]), new RegExp(`^strands: the broker at 127\\.0\\.0\\.1:${broker.port} refused this backend: authentication failed: invalid token$`));
});

test('backoff options out of range are refused when the backend is made', () => {
  assert.throws(() => new StrandsBackend({ port: 1, minBackoffMs: -1 }), /minBackoffMs must be a number from 0/);
  assert.throws(() => new StrandsBackend({ port: 1, minBackoffMs: 500, maxBackoffMs: 100 }), /maxBackoffMs must be a number from 500/);
  assert.throws(() => new StrandsBackend({ port: 1, healthyAfterMs: Number.NaN }), /healthyAfterMs/);
  assert.throws(() => new StrandsBackend({ port: 1, requestTimeoutMs: 0 }), /requestTimeoutMs/);
  // A minimum above the default maximum raises the maximum with it.
  assert.doesNotThrow(() => new StrandsBackend({ port: 1, minBackoffMs: 20_000 }));
});
