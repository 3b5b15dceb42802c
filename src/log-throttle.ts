/**
 * Lets one log line through per interval and counts the rest, so that a flood
 * (of bad lines, of failed logins) cannot turn into a flood of log lines.
 */
export class LogThrottle {
  private last = -Infinity;
  private held = 0;

  constructor(private readonly intervalMs: number) {}

  /** Undefined when this line must be skipped; else how many were skipped since the last one logged. */
  pass(now = Date.now()): number | undefined {
    if (now - this.last < this.intervalMs) {
      this.held++;
      return undefined;
    }
    const skipped = this.held;
    this.last = now;
    this.held = 0;
    return skipped;
  }
}
