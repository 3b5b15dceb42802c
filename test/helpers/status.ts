import assert from 'node:assert/strict';
import type { StatusSnapshot } from '../../src/metrics/status-page';

/** GET /stats.json from the metrics port of 127.0.0.1, checked to be a 200. */
export async function readStats(port: number): Promise<StatusSnapshot> {
  const response = await fetch(`http://127.0.0.1:${port}/stats.json`);
  assert.equal(response.status, 200);
  return (await response.json()) as StatusSnapshot;
}

/**
 * Reads /stats.json until `check` holds for a read, and returns that read: for
 * what changes only once a second (a rate sample, the largest rooms).
 */
export async function statsWhen(port: number, check: (s: StatusSnapshot) => boolean, what: string, timeoutMs = 5000): Promise<StatusSnapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snapshot = await readStats(port);
    if (check(snapshot)) return snapshot;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}; last read: ${JSON.stringify(snapshot)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
