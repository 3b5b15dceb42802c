/**
 * Every protocol extension through a two-node cluster on a real nats-server:
 * the backend on node a, the client it acts on with sockets on both nodes.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { StrandsBackend } from '../../src/sdk/backend';
import { clusterNode, hears, type Node } from '../helpers/cluster-nodes';
import { clientFor, waitUntil } from '../helpers/fixtures';
import { startNats } from '../helpers/nats';
import type { TestClient } from '../helpers/ws-client';

interface Setup {
  a: Node;
  b: Node;
  backend: StrandsBackend;
  opened: string[];
  connect(node: Node, clientId: string, room?: string): Promise<TestClient>;
}

/** Node a with a backend (the SDK's, recording who connects), then node b once it has heard of a's backend. */
async function setup(t: TestContext, url: string, a: Node): Promise<Setup> {
  const opened: string[] = [];
  const backend = new StrandsBackend({ port: a.tcpPort })
    .onConnectionRequest((req) => ({ accepted: true, client_id: req.queryParam('client_id'), room_id: req.queryParam('room') ?? 'lobby' }))
    .onNewConnection((ctx) => opened.push(ctx.client_id));
  await backend.connect();
  t.after(() => backend.close());
  const b = await clusterNode(t, url, 'b');
  await hears(b, 'a', 1);
  const connect = async (node: Node, clientId: string, room = 'lobby'): Promise<TestClient> => {
    const seen = opened.length;
    const client = await clientFor(t, `ws://127.0.0.1:${node.wsPort}/x?client_id=${clientId}&room=${room}`);
    await waitUntil(() => opened.length > seen, `${clientId}'s new_connection`);
    return client;
  };
  return { a, b, backend, opened, connect };
}

test('join_room, leave_room, disconnect, exclude, room_info, ack and binary across two nodes', async (t) => {
  const nats = await startNats(t);
  const a = await clusterNode(t, nats.url, 'a');
  const { b, backend, connect } = await setup(t, nats.url, a);
  const tabA = await connect(a, 'alice');
  const tabB = await connect(b, 'alice');
  const bob = await connect(b, 'bob');

  // join_room on every node; the ack counts the answering node's sockets.
  assert.deepEqual(await backend.joinRoom('alice', 'vip', { ack: true }), { ok: true, delivered: 1 });
  const vip = await backend.roomInfo('vip');
  assert.equal(vip.count, 1);
  assert.deepEqual(vip.client_ids, ['alice']);
  assert.deepEqual([vip.nodes, vip.nodes_total], [2, 2]);
  backend.sendToRoom('vip', 'for the vips');
  assert.equal(await tabA.nextMessage(), 'for the vips');
  assert.equal(await tabB.nextMessage(), 'for the vips');

  // room_info of the lobby: the whole cluster, each client once.
  const lobby = await backend.roomInfo('lobby');
  assert.deepEqual([lobby.count, lobby.client_ids], [2, ['alice', 'bob']]);

  // exclude on every node.
  backend.sendToRoom('lobby', 'not for alice', { exclude: 'alice' });
  backend.broadcast('not for bob', { exclude: ['bob'] });
  assert.equal(await bob.nextMessage(), 'not for alice');
  assert.equal(await tabA.nextMessage(), 'not for bob');
  assert.equal(await tabB.nextMessage(), 'not for bob');

  // binary frames, to both of alice's sockets.
  const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
  const frames = [tabA, tabB].map((tab) => new Promise<Buffer>((resolve) => tab.ws.on('message', (data: Buffer, isBinary: boolean) => isBinary && resolve(data))));
  backend.sendToConnection('alice', bytes);
  for (const frame of await Promise.all(frames)) assert.deepEqual([...frame], [...bytes]);

  // leave_room on every node.
  backend.leaveRoom('alice', 'vip');
  const empty = await backend.roomInfo('vip');
  assert.equal(empty.count, 0);

  // disconnect closes alice's sockets on both nodes, with the code and reason.
  backend.disconnectClient('alice', { code: 4002, reason: 'moderated' });
  assert.deepEqual(await tabA.closed, { code: 4002, reason: 'moderated' });
  assert.deepEqual(await tabB.closed, { code: 4002, reason: 'moderated' });
  assert.equal(bob.ws.readyState, bob.ws.OPEN);
});
