/**
 * Faults in a cluster of real processes: a node that dies or leaves, and a
 * NATS server killed and restarted under load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metric, nodeWithBackendThenPeer, readyz } from '../helpers/cluster-nodes';
import { clientFor } from '../helpers/fixtures';
import { startNats } from '../helpers/nats';

for (const [how, signal] of [['is killed', 'SIGKILL'], ['stops', 'SIGTERM']] as const) {
  test(`a node that ${how}: the survivors' backends are told what became of its clients`, async (t) => {
    const nats = await startNats(t);
    const { a, b, backend } = await nodeWithBackendThenPeer(t, nats.url);
    await clientFor(t, `ws://127.0.0.1:${b.wsPort}/r?client_id=on-b`);
    await backend.next('new_connection');
    b.child.kill(signal);
    if (signal === 'SIGTERM') assert.equal((await backend.next('disconnected')).params.context.client_id, 'on-b', 'a node that stops closes its clients first');
    const error = await backend.next('error', 5000, (l) => String(l.params.error).startsWith('cluster node b'));
    assert.match(String(error.params.error), signal === 'SIGKILL' ? /^cluster node b went silent: if it died its clients are gone/ : /^cluster node b left: its clients were closed and their disconnected events sent$/);
    assert.deepEqual(error.params.context, { node: 'b' });
    assert.equal(await metric(a, 'strands_cluster_nodes_lost_total'), 1);
  });
}

test('NATS killed and restarted under load: every node keeps serving its own clients, says the bus is down, reconnects, resubscribes and catches up', async (t) => {
  const nats = await startNats(t);
  const { a, b, backend } = await nodeWithBackendThenPeer(t, nats.url);
  const near = await clientFor(t, `ws://127.0.0.1:${a.wsPort}/r?client_id=near`);
  const far = await clientFor(t, `ws://127.0.0.1:${b.wsPort}/r?client_id=far`);
  await backend.next('new_connection');
  await backend.next('new_connection');
  // Load: the backend sends to the room all along.
  let sent = 0;
  const load = setInterval(() => backend.send({ request_id: `l${sent}`, action: 'message_to_room', params: { room_id: '/r', message: `load ${sent++}` } }), 5);
  t.after(() => clearInterval(load));
  await far.messages.next((m) => m.startsWith('load'), 5000, 'load reaching the far node');

  await nats.kill();
  await Promise.all([a.log('cluster bus down'), b.log('cluster bus down')]);
  assert.equal(await readyz(a), 503);
  assert.equal(await readyz(b), 503);
  // Node a still serves its own client; what it cannot send across is dropped and counted.
  const before = sent;
  await near.messages.next((m) => m === `load ${before + 5}`, 5000, 'load on the near node while NATS is down');
  assert.ok((await metric(a, 'strands_cluster_bus_messages_total', 'direction="dropped"')) > 0);
  // A client of node b speaks while the bus is down: its event waits in b's queue.
  far.ws.send('said while down');

  const restarted = await startNats(t, { port: nats.port });
  assert.equal(restarted.port, nats.port);
  await Promise.all([a.log('cluster bus connected again', 20_000), b.log('cluster bus connected again', 20_000)]);
  assert.equal((await backend.next('new_message', 10_000, (l) => l.params.message === 'said while down')).params.context.client_id, 'far');
  const after = sent;
  await far.messages.next((m) => Number(m.split(' ')[1]) > after, 10_000, 'load reaching the far node again (its room resubscribed)');
  assert.equal(await readyz(a), 200);
  assert.equal(await readyz(b), 200);
  assert.equal(a.child.exitCode, null);
  assert.equal(b.child.exitCode, null);
});
