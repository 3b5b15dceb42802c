/** How a connection request ended. */
export const AUTH_OUTCOMES = ['accepted', 'rejected', 'timeout', 'no_backend', 'backends_busy', 'bad_response'] as const;
export type AuthOutcome = (typeof AUTH_OUTCOMES)[number];

/** Upper bounds of the latency buckets, in seconds. */
export const AUTH_LATENCY_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

export interface LatencyBuckets {
  /** counts[i]: observations <= AUTH_LATENCY_BOUNDS[i] and above the bound before; the last slot counts those above every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * Time from a connection_request to its outcome, kept as plain numbers per
 * outcome (one bump per connection) for metrics to read at scrape time.
 */
export class AuthLatency {
  readonly byOutcome: Readonly<Record<AuthOutcome, LatencyBuckets>> = Object.fromEntries(
    AUTH_OUTCOMES.map((o) => [o, { counts: new Array<number>(AUTH_LATENCY_BOUNDS.length + 1).fill(0), sum: 0, count: 0 }]),
  ) as Record<AuthOutcome, LatencyBuckets>;

  observe(outcome: AuthOutcome, seconds: number): void {
    const buckets = this.byOutcome[outcome];
    let i = 0;
    while (i < AUTH_LATENCY_BOUNDS.length && seconds > (AUTH_LATENCY_BOUNDS[i] as number)) i++;
    (buckets.counts[i] as number)++;
    buckets.sum += seconds;
    buckets.count++;
  }
}
