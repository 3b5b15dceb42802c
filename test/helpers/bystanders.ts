import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { BrokerConfig } from '../../src/config';
import type { TestBroker } from './broker';
import { backendFor, brokerFor, clientFor, takeAll, takeOne, waitUntil } from './fixtures';
import type { Line, RawBackend } from './raw-backend';
import type { TestClient } from './ws-client';

/**
 * A broker with two accepting raw backends and one connected client, for tests
 * in which one party misbehaves: `bad` (or a client the test adds) does the
 * damage, while `good` and `bystander` show that nobody else notices.
 */
interface Arena {
  broker: TestBroker;
  /** The backend a test misbehaves with. */
  bad: RawBackend;
  /** A well-behaved backend; it answers the bystander's pings. */
  good: RawBackend;
  /** A client with client_id `bystander` in room `/lobby`. */
  bystander: TestClient;
  backends: RawBackend[];
  /** Connects another client (client_id `clientId`, room = `path`) and waits for its new_connection on either backend. */
  join(clientId: string, path?: string): Promise<{ client: TestClient; opened: Line }>;
  /**
   * One ping-pong of the bystander: its message `tag` reaches a backend as
   * new_message, and `good` answers it with message_to_connection `pong:<tag>`,
   * which the bystander receives.
   */
  roundTrip(tag: string, timeoutMs?: number): Promise<void>;
  /** `from` sends a valid message_to_connection to the bystander, which must arrive: the link is still up and still obeyed. */
  assertStillObeyed(from: RawBackend, tag: string): Promise<void>;
  /** The next `error` event `backend` gets whose text matches `pattern`; its context must be `{}`. */
  expectError(backend: RawBackend, pattern: RegExp): Promise<Line>;
  /** Fails if `backend` received an `error` event (one that nobody took yet). */
  assertNoError(backend: RawBackend, why: string): void;
}

export async function arena(t: TestContext, overrides: Partial<BrokerConfig> = {}): Promise<Arena> {
  const broker = await brokerFor(t, overrides);
  const bad = await backendFor(t, broker.tcpPort, { accept: true });
  const good = await backendFor(t, broker.tcpPort, { accept: true });
  const backends = [bad, good];
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');

  const join = async (clientId: string, path = '/lobby'): Promise<{ client: TestClient; opened: Line }> => {
    const client = await clientFor(t, broker.url(`${path}?client_id=${encodeURIComponent(clientId)}`));
    const [opened] = await takeOne(backends, (l) => l.action === 'new_connection' && l.params.context?.client_id === clientId);
    return { client, opened };
  };
  const { client: bystander } = await join('bystander');

  const roundTrip = async (tag: string, timeoutMs = 5000): Promise<void> => {
    bystander.ws.send(tag);
    await takeOne(backends, (l) => l.action === 'new_message' && l.params.message === tag && l.params.context?.client_id === 'bystander', timeoutMs);
    good.send({ request_id: `pong-${tag}`, action: 'message_to_connection', params: { conn_id: 'bystander', message: `pong:${tag}` } });
    await bystander.messages.next((m) => m === `pong:${tag}`, timeoutMs, `the bystander's pong for ${tag}`);
  };

  const assertStillObeyed = async (from: RawBackend, tag: string): Promise<void> => {
    from.send({ request_id: `after-${tag}`, action: 'message_to_connection', params: { conn_id: 'bystander', message: `after:${tag}` } });
    await bystander.messages.next((m) => m === `after:${tag}`, 5000, `after:${tag} at the bystander`);
  };

  const expectError = async (backend: RawBackend, pattern: RegExp): Promise<Line> => {
    const line = await backend.lines.next((l) => l.action === 'error' && pattern.test(String(l.params.error)), 5000, `an error event matching ${pattern}`);
    assert.deepEqual(line.params.context, {});
    assert.equal(typeof line.request_id, 'string');
    return line;
  };

  const assertNoError = (backend: RawBackend, why: string): void => {
    assert.deepEqual(takeAll(backend, (l) => l.action === 'error').map((l) => l.params.error), [], why);
  };

  return { broker, bad, good, bystander, backends, join, roundTrip, assertStillObeyed, expectError, assertNoError };
}
