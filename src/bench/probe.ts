import WebSocket from 'ws';
import { sleep } from './clock';
import { CLIENT_ID_HEADER, clientId } from './wire';

/** How long a target that is still starting (`npx strands & strands bench ...`) has to accept the harness. */
const READY_TIMEOUT_MS = 5000;
const RETRY_MS = 100;

/**
 * Calls `attempt` until it succeeds (resolves undefined), again every
 * RETRY_MS while its failure is `retryable` and READY_TIMEOUT_MS has not
 * passed since the first call; resolves with the failure that ended it.
 */
export async function retryWhileStarting<F>(attempt: () => Promise<F | undefined>, retryable: (failure: F) => boolean = () => true): Promise<F | undefined> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const failure = await attempt();
    if (failure === undefined || !retryable(failure) || Date.now() >= deadline) return failure;
    await sleep(RETRY_MS);
  }
}

/**
 * Resolves once one client gets through the target (a broker has its backend
 * link registered, say); throws with the last failure after a few seconds.
 * The run's own clients then need no retries.
 */
export async function waitUntilAccepting(targetUrl: string, runId: string): Promise<void> {
  const url = new URL(targetUrl);
  const id = clientId(runId, 'probe');
  url.searchParams.set('client_id', id);
  const failure = await retryWhileStarting(() => tryOnce(url, id));
  if (failure !== undefined) throw new Error(`the target at ${targetUrl} does not accept clients: ${failure}`);
}

/** Opens and closes one client; returns why it failed, if it did. */
function tryOnce(url: URL, id: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { [CLIENT_ID_HEADER]: id }, perMessageDeflate: false, handshakeTimeout: READY_TIMEOUT_MS });
    ws.once('open', () => {
      ws.once('close', () => resolve(undefined));
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve(`upgrade answered with HTTP ${res.statusCode ?? '?'}`);
    });
    ws.on('error', (err) => resolve(err.message));
  });
}
