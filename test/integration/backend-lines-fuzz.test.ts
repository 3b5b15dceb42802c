/**
 * No backend line can end the broker: arbitrary JSON in every field of every
 * action (fast-check), and hostile lines (nesting far past what overflows the
 * stack, objects whose toString is not a function where strings belong),
 * thrown at a broker in its own process while another backend and its client
 * go on working.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RawBackend } from '../helpers/raw-backend';
import { spawnBroker } from '../helpers/spawn-broker';
import { openClient, type TestClient } from '../helpers/ws-client';
import { waitUntil } from '../helpers/fixtures';

const ACTIONS = ['broadcast', 'message_to_room', 'message_to_connection', 'response', 'join_room', 'leave_room', 'disconnect', 'room_info', 'auth', 'heartbeat', 'new_message', 'error'];
const PARAM_NAMES = ['message', 'room_id', 'conn_id', 'exclude', 'binary', 'code', 'reason', 'cursor', 'accepted', 'client_id', 'metadata', 'token'];
const TOKEN = 's3cret';

/** `[[[...1...]]]` nested `depth` levels: JSON.parse takes it, JSON.stringify and String() overflow the stack on it. */
function deep(depth: number, open = '[', close = ']'): string {
  return open.repeat(depth) + '1' + close.repeat(depth);
}

/** Nesting 20,000 deep, or a toString that is not a function, in each field a line has: unchecked, any of them ends the process. */
const HOSTILE_LINES = [
  '{"action":{"toString":1},"params":7}',
  `{"request_id":"d1","action":${deep(20_000)},"params":{}}`,
  `{"request_id":"d2","action":${deep(20_000, '{"a":', '}')},"params":{}}`,
  `{"request_id":"d3","action":"message_to_room","params":{"room_id":${deep(20_000)},"message":"m"}}`,
  `{"request_id":"d4","action":"broadcast","params":{"message":"m","exclude":${deep(20_000)}}}`,
  `{"request_id":{"toString":1},"action":"nope","params":{}}`,
  `{"request_id":"d5","action":"disconnect","params":{"conn_id":"x","code":{"valueOf":1},"reason":${deep(20_000)}}}`,
];

interface Arena {
  broker: Awaited<ReturnType<typeof spawnBroker>>;
  good: RawBackend;
  bad: RawBackend;
  client: TestClient;
  /** A message from the good backend reaches the client: the broker still serves others. */
  stillWorks(tag: string): Promise<void>;
}

async function arena(t: TestContext, args: string[] = [], authenticate = false): Promise<Arena> {
  const broker = await spawnBroker(t, args);
  const auth = { request_id: 'a', action: 'auth', params: { token: TOKEN } };
  const good = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => good.kill());
  if (authenticate) good.send(auth);
  const client = await openClient(`ws://127.0.0.1:${broker.wsPort}/room?client_id=witness`);
  t.after(() => client.ws.terminate());
  await good.next('new_connection');
  const bad = await RawBackend.connect(broker.tcpPort);
  t.after(() => bad.kill());
  bad.socket.on('error', () => undefined);
  if (authenticate) bad.send(auth);
  const stillWorks = async (tag: string): Promise<void> => {
    assert.equal(broker.child.exitCode, null, `the broker exited (${broker.child.exitCode}); stderr: ${broker.stderr()}`);
    good.send({ request_id: tag, action: 'message_to_connection', params: { conn_id: 'witness', message: tag } });
    await client.messages.next((m) => m === tag, 5000, `the message ${tag}`);
  };
  await stillWorks('before');
  return { broker, good, bad, client, stillWorks };
}

for (const authenticate of [false, true]) {
  const args = authenticate ? ['--backend-token', TOKEN] : [];
  const how = authenticate ? ' (with --backend-token, after authenticating)' : '';

  test(`lines nesting 20,000 deep or holding an object whose toString is not a function get an error event each, and the broker goes on${how}`, async (t) => {
    const a = await arena(t, args, authenticate);
    for (const line of HOSTILE_LINES) {
      a.bad.sendRaw(line + '\n');
      const error = await a.bad.next('error');
      assert.equal(typeof error.params.error, 'string');
      assert.ok(error.params.error.length < 300, `a short error text, not the line echoed: ${error.params.error.length} chars`);
    }
    await a.stillWorks('after the hostile lines');
    assert.equal(a.bad.socket.destroyed, false, 'the bad backend stays connected');
  });

  test(`arbitrary JSON in every field of every action never ends the broker nor disturbs anyone else${how}`, async (t) => {
    const a = await arena(t, args, authenticate);
    // Deeply nested values stand in the generated lines as "<deep:N>", replaced in the text: fast-check itself
    // (and JSON.stringify in this test) would overflow the stack on the real values.
    const value = fc.oneof(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 10, max: 12_000 }).map((d) => `<deep:${d}>`), fc.string({ unit: 'binary', maxLength: 200 }), fc.constant('\ud83d'));
    const toLine = (envelope: unknown): string => JSON.stringify(envelope).replace(/"<deep:(\d+)>"/g, (_, d: string) => deep(Number(d))) + '\n';
    const envelope = fc.record(
      {
        request_id: fc.oneof(fc.string(), value),
        action: fc.oneof(fc.constantFrom(...ACTIONS), value),
        params: fc.oneof(fc.dictionary(fc.constantFrom(...PARAM_NAMES), value, { maxKeys: 6 }), value),
        ack: fc.oneof(fc.boolean(), value),
      },
      { requiredKeys: [] },
    );
    let lines = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(envelope, { minLength: 1, maxLength: 20 }), async (batch) => {
        a.bad.sendRaw(batch.map(toLine).join(''));
        lines += batch.length;
        await a.stillWorks(`after batch ${lines}`);
      }),
      { numRuns: 60 },
    );
    t.diagnostic(`${lines} arbitrary lines thrown at the broker`);
    await waitUntil(() => a.broker.child.exitCode === null, 'the broker is alive');
    // Every line was judged by the checks, none reached the guard that catches the broker's own defects.
    const defects = a.broker.stdout.pending.filter((l) => String(l.msg).startsWith('internal error'));
    assert.deepEqual(defects, []);
  });
}
