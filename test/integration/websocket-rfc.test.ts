/**
 * RFC 6455 cases that uWebSockets.js decides in C, before any JavaScript runs,
 * and that the broker cannot be told to decide otherwise. Each test pins what
 * happens today, so that an upgrade of uWebSockets.js that changes it is
 * noticed; docs/security.md ("What we tested") says why, with the upstream
 * reference.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor, brokerFor } from '../helpers/fixtures';
import { rawUpgrade } from '../helpers/raw-upgrade';
import { clientFrame, nextServerClose, Opcode } from '../helpers/ws-frames';
import type { RawBackend } from '../helpers/raw-backend';
import type { Socket } from 'node:net';

/** A broker, a raw backend, and a raw client socket upgraded (101) as `clientId`, its new_connection seen. */
async function upgraded(t: TestContext, clientId: string): Promise<{ backend: RawBackend; socket: Socket }> {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { socket, status } = await rawUpgrade(broker.wsPort, `/rfc?client_id=${clientId}`);
  t.after(() => socket.destroy());
  assert.equal(status, 101);
  await backend.next('new_connection');
  return { backend, socket };
}

test('an unmasked client frame is not refused with 1002: uWS reads its first four payload bytes as the mask (RFC 6455 5.1 is not enforced)', async (t) => {
  const { backend, socket } = await upgraded(t, 'unmasked');
  // MASK bit clear, length 8: uWS takes 00 00 00 00 as the mask, then eight payload bytes (four more than sent here).
  socket.write(Buffer.concat([Buffer.from([0x81, 8, 0, 0, 0, 0]), Buffer.from('evil'), Buffer.from('data')]));
  const message = await backend.next('new_message');
  assert.equal(message.params.message, 'evildata');
});

for (const [what, payload] of [
  ['close code 999', Buffer.from([0x03, 0xe7])],
  ['close code 1005 (reserved, never sent)', Buffer.from([0x03, 0xed])],
  ['a close reason that is not UTF-8', Buffer.from([0x03, 0xe8, 0xff, 0xfe])],
] as const) {
  test(`${what} is answered with a close frame without a code, not 1002 or 1007, and the socket closes`, async (t) => {
    const { backend, socket } = await upgraded(t, 'closer');
    const answer = nextServerClose(socket);
    socket.write(clientFrame(Opcode.Close, payload));
    assert.deepEqual(await answer, { code: undefined, reason: '' });
    const gone = await backend.next('disconnected');
    assert.equal(gone.params.context.client_id, 'closer');
  });
}

test('for comparison, a valid close frame (1000) is echoed with its code', async (t) => {
  const { socket } = await upgraded(t, 'polite');
  const answer = nextServerClose(socket);
  socket.write(clientFrame(Opcode.Close, Buffer.from([0x03, 0xe8])));
  assert.equal((await answer).code, 1000);
});
