/**
 * What operators see. /healthz, /readyz and
 * /metrics on --metrics-port, and draining.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor, brokerFor, clientFor, waitUntil } from '../helpers/fixtures';
import { httpGet, sampleValue, scrape, type Sample } from '../helpers/metrics-probe';
import { upgradeStatus } from '../helpers/ws-client';

/** Asserts the value of one sample, naming it in the failure. */
function assertSample(samples: Sample[], name: string, labels: Record<string, string>, expected: number): void {
  const value = sampleValue(samples, name, labels);
  const where = `${name}${JSON.stringify(labels)}`;
  assert.notEqual(value, undefined, `${where} is missing from /metrics`);
  assert.equal(value, expected, where);
}

test('/healthz is 200 and an unknown path 404', async (t) => {
  const broker = await brokerFor(t, { metricsPort: 0 });
  const port = broker.broker.metricsPort;
  assert.ok(port > 0, 'broker.metricsPort is the bound port');
  assert.equal((await httpGet(port, '/healthz')).status, 200);
  assert.equal((await httpGet(port, '/healthz?probe=1')).status, 200);
  assert.equal((await httpGet(port, '/nope')).status, 404);
  assert.equal((await httpGet(port, '/')).status, 404);
  assert.equal((await httpGet(port, '/metricsx')).status, 404);
});

test('/readyz: 200 with the queue enabled and no backend', async (t) => {
  const broker = await brokerFor(t, { metricsPort: 0 });
  assert.equal(broker.broker.stats.backends.connected, 0);
  assert.equal((await httpGet(broker.broker.metricsPort, '/readyz')).status, 200);
});

test('/readyz with --queue-size 0: 503 without a backend, 200 once one connects, 503 again when it leaves', async (t) => {
  const broker = await brokerFor(t, { metricsPort: 0, queueSize: 0 });
  const port = broker.broker.metricsPort;
  assert.equal((await httpGet(port, '/readyz')).status, 503);
  const backend = await backendFor(t, broker.tcpPort);
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');
  assert.equal((await httpGet(port, '/readyz')).status, 200);
  assert.equal((await httpGet(port, '/healthz')).status, 200);
  await backend.close();
  await waitUntil(() => broker.broker.stats.backends.connected === 0, 'the backend left the pool');
  assert.equal((await httpGet(port, '/readyz')).status, 503);
});

test('/readyz is 503 while draining, and new upgrades get 503', async (t) => {
  const broker = await brokerFor(t, { metricsPort: 0 });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');
  const port = broker.broker.metricsPort;
  const client = await clientFor(t, broker.url('/?client_id=stayer'));
  assert.equal((await httpGet(port, '/readyz')).status, 200);

  const draining = broker.broker.drain(10_000);
  assert.equal((await httpGet(port, '/readyz')).status, 503);
  assert.equal((await httpGet(port, '/healthz')).status, 200, 'alive while draining');
  assert.equal(await upgradeStatus(broker.url('/?client_id=late')), 503);
  // Open clients keep working while the broker drains.
  client.ws.send('still here');
  assert.equal((await backend.next('new_message')).params.message, 'still here');

  await broker.broker.stop();
  assert.equal((await client.closed).code, 1001);
  void draining;
});

test('drain end to end: upgrades during the drain get 503, then open clients are closed with 1001 and asked to reconnect', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');
  const client = await clientFor(t, broker.url('/?client_id=open-one'));
  await backend.next('new_connection');

  const startedAt = Date.now();
  const drained = broker.broker.drain(200);
  assert.equal(await upgradeStatus(broker.url('/?client_id=during')), 503);
  const { code, reason } = await client.closed;
  assert.equal(code, 1001);
  assert.match(reason, /reconnect/);
  assert.ok(Date.now() - startedAt >= 190, 'clients are closed only after the drain period');
  assert.equal((await backend.next('disconnected')).params.context.client_id, 'open-one');
  await drained;
  assert.equal(broker.broker.stats.connections.refused[503], 1);
  assert.equal(broker.broker.stats.connections.closedBy.going_away, 1);
});

test('/metrics: Prometheus text whose counters follow a connect/message/disconnect cycle, errors, refusals and queue overflow', async (t) => {
  const broker = await brokerFor(t, { metricsPort: 0, queueSize: 2 });
  const port = broker.broker.metricsPort;

  const initial = await scrape(port);
  assert.ok(initial.length > 0);
  for (const sample of initial) {
    const family = sample.name.replace(/_(bucket|sum|count)$/, '');
    assert.match(family, /^strands_[a-z_]+$/, `metric ${sample.name}`);
    assert.match(sample.name, /^strands_[a-z_]+$/, `metric ${sample.name}`);
  }
  assertSample(initial, 'strands_connections_opened_total', {}, 0);
  assertSample(initial, 'strands_backends_connected', {}, 0);

  // A refusal: no backend yet.
  assert.equal(await upgradeStatus(broker.url('/')), 503);

  // One full cycle: connect, N messages, normal close.
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');
  const N = 3;
  const client = await clientFor(t, broker.url('/chat?client_id=cycle'));
  await backend.next('new_connection');
  for (let i = 0; i < N; i++) client.ws.send(`m${i}`);
  for (let i = 0; i < N; i++) assert.equal((await backend.next('new_message')).params.message, `m${i}`);
  const duringCycle = await scrape(port);
  assertSample(duringCycle, 'strands_connections_open', {}, 1);
  assertSample(duringCycle, 'strands_rooms', {}, 1);
  await client.close();
  await backend.next('disconnected');

  const cycle = await scrape(port);
  assertSample(cycle, 'strands_connections_opened_total', {}, 1);
  assertSample(cycle, 'strands_connections_closed_total', { reason: 'normal' }, 1);
  assertSample(cycle, 'strands_connections_open', {}, 0);
  assertSample(cycle, 'strands_rooms', {}, 0);
  assertSample(cycle, 'strands_messages_in_total', { action: 'new_message' }, N);
  assertSample(cycle, 'strands_messages_out_total', { action: 'new_connection' }, 1);
  assertSample(cycle, 'strands_messages_out_total', { action: 'new_message' }, N);
  assertSample(cycle, 'strands_messages_out_total', { action: 'disconnected' }, 1);
  assertSample(cycle, 'strands_messages_out_total', { action: 'connection_request' }, 1);
  assertSample(cycle, 'strands_backends_connected', {}, 1);
  assertSample(cycle, 'strands_auth_latency_seconds_count', { outcome: 'accepted' }, 1);
  assertSample(cycle, 'strands_connections_refused_total', { status: '503' }, 1);
  assertSample(cycle, 'strands_queue_depth', {}, 0);
  assertSample(cycle, 'strands_errors_total', { kind: 'invalid_json' }, 0);
  // The refusal above had no backend to report it to; it is counted, never queued.
  assertSample(cycle, 'strands_errors_total', { kind: 'no_backend' }, 1);

  // A bad line from the backend.
  backend.sendRaw('{not json\n');
  assert.match((await backend.next('error')).params.error, /invalid JSON/);
  assertSample(await scrape(port), 'strands_errors_total', { kind: 'invalid_json' }, 1);

  // Queue overflow: a client stays while its backend leaves, then sends more than the queue holds.
  const stayer = await clientFor(t, broker.url('/chat?client_id=stayer'));
  await backend.next('new_connection');
  await backend.close();
  await waitUntil(() => broker.broker.stats.backends.connected === 0, 'the backend left the pool');
  for (let i = 0; i < 5; i++) stayer.ws.send(`q${i}`);
  await waitUntil(() => broker.broker.stats.messagesOut.new_message === N + 5, 'the broker took the five messages');
  const overflow = await scrape(port);
  assertSample(overflow, 'strands_backends_connected', {}, 0);
  assertSample(overflow, 'strands_queue_depth', {}, 2);
  assertSample(overflow, 'strands_queue_dropped_total', {}, 3);
  assertSample(overflow, 'strands_rooms', {}, 1);
  assertSample(overflow, 'strands_connections_opened_total', {}, 2);

  // The queue keeps the newest two, delivered in order to the next backend.
  const next = await backendFor(t, broker.tcpPort);
  assert.equal((await next.next('new_message')).params.message, 'q3');
  assert.equal((await next.next('new_message')).params.message, 'q4');
  assertSample(await scrape(port), 'strands_queue_depth', {}, 0);
});
