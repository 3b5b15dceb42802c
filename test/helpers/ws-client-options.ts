import WebSocket from 'ws';
import { AsyncQueue } from './async-queue';
import type { TestClient } from './ws-client';

/**
 * Like openClient (ws-client.ts), for what it cannot express: `ws` client
 * options such as TLS trust (`ca`, `rejectUnauthorized`) or the local address
 * to connect from (`localAddress`). Rejects with `status` set when the upgrade
 * is answered with an HTTP error.
 */
export function openClientWith(url: string, options: WebSocket.ClientOptions): Promise<TestClient> {
  const ws = new WebSocket(url, options);
  const messages = new AsyncQueue<string>();
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        closed,
        nextMessage: (timeoutMs = 5000) => messages.next(() => true, timeoutMs, 'a WebSocket message'),
        close: async () => {
          if (ws.readyState === WebSocket.CLOSED) return;
          ws.close();
          await closed;
        },
      }),
    );
    ws.once('unexpected-response', (_req, res) => {
      const err = new Error(`upgrade answered with HTTP ${res.statusCode}`) as Error & { status?: number };
      err.status = res.statusCode;
      res.resume();
      ws.terminate();
      reject(err);
    });
    ws.once('error', (err) => reject(err));
  });
}

/** The HTTP status the upgrade was refused with, using `ws` options (fails if it was accepted). */
export async function upgradeStatusWith(url: string, options: WebSocket.ClientOptions): Promise<number> {
  let client: TestClient;
  try {
    client = await openClientWith(url, options);
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status !== undefined) return status;
    throw err;
  }
  await client.close();
  throw new Error('the upgrade was accepted');
}
