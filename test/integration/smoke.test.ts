import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBroker } from '../helpers/broker';
import { RawBackend } from '../helpers/raw-backend';
import { openClient } from '../helpers/ws-client';

test('a client connects through a backend and its message comes back via message_to_connection', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.stop());
  const backend = await RawBackend.connect(broker.tcpPort, { accept: true });
  const client = await openClient(broker.url('/chat?client_id=alice'));
  const opened = await backend.next('new_connection');
  assert.deepEqual(opened.params.context, { client_id: 'alice', room_id: '/chat', metadata: {} });
  client.ws.send('hi');
  const message = await backend.next('new_message');
  assert.equal(message.params.message, 'hi');
  backend.send({ request_id: 'x', action: 'message_to_connection', params: { conn_id: 'alice', message: 'back' } });
  assert.equal(await client.nextMessage(), 'back');
  await client.close();
  assert.equal((await backend.next('disconnected')).params.context.client_id, 'alice');
});
