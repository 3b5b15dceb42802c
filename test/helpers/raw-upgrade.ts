import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface RawUpgradeResult {
  /** HTTP status of the answer (101 when upgraded). */
  status: number;
  /** Response headers, names lower-cased (last value wins). */
  headers: Record<string, string>;
  /** The Sec-WebSocket-Key sent. */
  key: string;
  /** The socket; still open after a 101, for the test to end. */
  socket: Socket;
  /** The port this side of the connection used, as the broker should report it in remote_addr. */
  localPort: number;
}

/** The Sec-WebSocket-Accept a server must answer `key` with (RFC 6455). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/**
 * A WebSocket upgrade request written by hand on a bare TCP socket, so that a
 * test can send what `ws` cannot: the same header twice, odd header case.
 * `extraHeaders` lines are written in order, after the mandatory ones.
 * Resolves once the response head has arrived.
 */
export async function rawUpgrade(port: number, target: string, extraHeaders: [string, string][] = [], timeoutMs = 5000): Promise<RawUpgradeResult> {
  const key = randomBytes(16).toString('base64');
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const localPort = socket.localPort as number;
  const lines = [
    `GET ${target} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    ...extraHeaders.map(([name, value]) => `${name}: ${value}`),
  ];
  socket.write(lines.join('\r\n') + '\r\n\r\n');
  const head = await readHead(socket, timeoutMs);
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const match = /^HTTP\/1\.1 (\d{3})/.exec(statusLine);
  if (!match) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(match[1]), headers, key, socket, localPort };
}

/** Reads up to the blank line ending an HTTP response head; bytes after it are left unread. */
function readHead(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no HTTP response head within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const rest = received.subarray(end + 4);
      finish(undefined, received.subarray(0, end).toString('latin1'));
      if (rest.length > 0) socket.unshift(rest);
    };
    const onClose = (): void => finish(new Error(`connection closed before a response head; got ${JSON.stringify(received.toString('latin1'))}`));
    const finish = (err: Error | undefined, head?: string): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(head as string);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', () => undefined);
  });
}
