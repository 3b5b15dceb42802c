/**
 * BackendLink over a real socket pair: what it hands back to the queue when
 * its backend goes away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { BackendLink, type BackendLinkEvents } from '../../src/backends/backend-link';

const MiB = 1024 * 1024;

test('a batch whose write fails at once, because the backend reset the socket before the broker read the reset, is handed back by takeUnsent', async (t) => {
  const server = net.createServer().listen(0, '127.0.0.1');
  t.after(() => server.close());
  await once(server, 'listening');
  const backend = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  await once(backend, 'connect');
  let closedWith: (error: Error | undefined) => void = () => undefined;
  const closed = new Promise<Error | undefined>((resolve) => (closedWith = resolve));
  const events: BackendLinkEvents = {
    onLine: () => undefined,
    onOversizedLine: () => undefined,
    onWritable: () => undefined,
    onOverflow: () => undefined,
    onClose: (_link, error) => closedWith(error),
  };
  const link = new BackendLink(socket, MiB, MiB, events);
  const line = '{"request_id":"1","action":"new_message","params":{"message":"m1"}}\n';

  // The backend dies with a reset; in the same turn, before the event loop can read it, the link flushes.
  backend.resetAndDestroy();
  link.send(line, 42);
  link.flush();

  const error = (await closed) as NodeJS.ErrnoException | undefined;
  assert.equal(error?.syscall, 'write', `the link closed on ${error?.syscall} ${error?.code}, not on the failed write`);
  assert.deepEqual(link.takeUnsent(), [{ line, affinity: 42 }]);
});
