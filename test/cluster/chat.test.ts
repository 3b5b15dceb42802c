/**
 * A chat across a cluster: one client on each of two brokers, the backend on a
 * third; every room message reaches both clients exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawBackend } from '../helpers/raw-backend';
import { spawnBroker } from '../helpers/spawn-broker';
import { openClient } from '../helpers/ws-client';
import { startNats } from '../helpers/nats';

test('a chat works with one client on each of two brokers and the backend on a third', async (t) => {
  const nats = await startNats(t);
  const cluster = ['--cluster', nats.url, '--cluster-heartbeat', '200', '--log-level', 'info'];
  const c = await spawnBroker(t, [...cluster, '--node-id', 'c']);
  const backend = await RawBackend.connect(c.tcpPort, { accept: true });
  t.after(() => backend.kill());
  const a = await spawnBroker(t, [...cluster, '--node-id', 'a']);
  const b = await spawnBroker(t, [...cluster, '--node-id', 'b']);
  for (const node of [a, b]) await node.stdout.next((l) => l.msg === 'cluster: node joined' && l.node === 'c' && l.backends === 1, 10_000, 'node c with its backend');

  const x = await openClient(`ws://127.0.0.1:${a.wsPort}/chat?client_id=x`);
  const y = await openClient(`ws://127.0.0.1:${b.wsPort}/chat?client_id=y`);
  t.after(() => [x, y].forEach((client) => client.ws.terminate()));
  for (const id of ['x', 'y']) await backend.next('new_connection', 5000, (l) => l.params.context.client_id === id);

  x.ws.send('hello from a');
  const said = await backend.next('new_message');
  assert.equal(said.params.message, 'hello from a');
  assert.equal(said.params.context.client_id, 'x');
  backend.send({ request_id: 'r1', action: 'message_to_room', params: { room_id: '/chat', message: 'x: hello from a' } });
  assert.equal(await x.nextMessage(), 'x: hello from a');
  assert.equal(await y.nextMessage(), 'x: hello from a');

  y.ws.send('hi from b');
  assert.equal((await backend.next('new_message')).params.message, 'hi from b');
  backend.send({ request_id: 'r2', action: 'message_to_room', params: { room_id: '/chat', message: 'y: hi from b' } });
  backend.send({ request_id: 'r3', action: 'message_to_connection', params: { conn_id: 'x', message: 'just for x' } });
  backend.send({ request_id: 'r4', action: 'broadcast', params: { message: 'everyone' } });
  assert.deepEqual([await x.nextMessage(), await x.nextMessage(), await x.nextMessage()], ['y: hi from b', 'just for x', 'everyone']);
  assert.deepEqual([await y.nextMessage(), await y.nextMessage()], ['y: hi from b', 'everyone']);
  // Exactly once: nothing else arrives.
  backend.send({ request_id: 'r5', action: 'broadcast', params: { message: 'end' } });
  assert.equal(await x.nextMessage(), 'end');
  assert.equal(await y.nextMessage(), 'end');
});
