import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { AsyncQueue } from './async-queue';

export interface TestClient {
  ws: WebSocket;
  /** The TCP connection under the WebSocket (the upgrade response's socket): pausing it makes a client that stops reading. */
  socket: Socket;
  messages: AsyncQueue<string>;
  /** Resolves with the close code once the socket closed. */
  closed: Promise<{ code: number; reason: string }>;
  nextMessage(timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Opens a WebSocket, with `ws` client options when a test needs them (headers,
 * TLS trust, the local address to connect from); rejects with `status` set when
 * the server answers the upgrade with an HTTP error.
 */
export function openClient(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
  const ws = new WebSocket(url, options);
  const messages = new AsyncQueue<string>();
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    // 'upgrade' (the 101 response, on the socket the WebSocket then uses) always comes before 'open'.
    ws.once('upgrade', (response) =>
      ws.once('open', () =>
        resolve({
          ws,
          socket: response.socket,
          messages,
          closed,
          nextMessage: (timeoutMs = 5000) => messages.next(() => true, timeoutMs, 'a WebSocket message'),
          close: async () => {
            if (ws.readyState === WebSocket.CLOSED) return;
            ws.close();
            await closed;
          },
        }),
      ),
    );
    ws.once('unexpected-response', (_req, res) => {
      const err = new Error(`upgrade answered with HTTP ${res.statusCode}`) as Error & { status?: number; headers?: Record<string, unknown> };
      err.status = res.statusCode;
      err.headers = res.headers;
      res.resume();
      ws.terminate();
      reject(err);
    });
    ws.once('error', (err) => reject(err));
  });
}

/** The HTTP status the upgrade was refused with (fails the test if it was accepted). */
export async function upgradeStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  try {
    const client = await openClient(url, options);
    await client.close();
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status !== undefined) return status;
    throw err;
  }
  throw new Error('the upgrade was accepted');
}
