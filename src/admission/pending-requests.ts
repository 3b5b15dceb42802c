export interface PendingEntry<H> {
  /** Who holds the request now (a backend link); it changes when a request is sent again. */
  holder: H;
  readonly deadline: number;
}

/**
 * Connection requests waiting for a backend's `response`. Every request gets
 * the same timeout, so insertion order is deadline order: one timer, armed for
 * the oldest, serves them all.
 */
export class PendingRequests<H, T extends PendingEntry<H> = PendingEntry<H>> {
  private readonly entries = new Map<string, T>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly now: () => number,
    private readonly onTimeout: (id: string, entry: T) => void,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(id: string, entry: T): void {
    this.entries.set(id, entry);
    if (this.timer === undefined) this.arm(entry.deadline);
  }

  /** Removes and returns the request, if it is still waiting. */
  take(id: string): T | undefined {
    const entry = this.entries.get(id);
    if (entry !== undefined) this.entries.delete(id);
    return entry;
  }

  /** The requests `holder` holds, oldest first. */
  heldBy(holder: H): [string, T][] {
    const held: [string, T][] = [];
    for (const pair of this.entries) if (pair[1].holder === holder) held.push(pair);
    return held;
  }

  /** Removes and returns every waiting request. */
  takeAll(): [string, T][] {
    const all = [...this.entries];
    this.entries.clear();
    return all;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(deadline: number): void {
    // A timeout handler may add a request (arming a timer) before the loop in expire re-arms.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.expire(), Math.max(0, deadline - this.now()));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (entry.deadline > now) {
        this.arm(entry.deadline);
        return;
      }
      this.entries.delete(id);
      this.onTimeout(id, entry);
    }
  }
}
