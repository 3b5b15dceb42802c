/** Conventions shared by the harness, its client workers, its backend and the baseline server. */

/** Carries the client id as well as `?client_id=`, for brokers that drop the query string (the Go broker does). */
export const CLIENT_ID_HEADER = 'X-Strands-Bench-Client';

export function clientId(runId: string, index: number | 'probe'): string {
  return `${runId}-${index}`;
}

/** Messages sent on this path of the baseline server are published to every other socket. */
export const BASELINE_PUBLISH_PATH = '/_strands_bench/publish';

/** The baseline server's one topic: every client joins it. */
export const BASELINE_TOPIC = 'bench';

/** The `msg` of the JSON line the baseline server prints once listening, shaped like the broker's. */
export const BASELINE_READY_MSG = 'strands baseline listening';
