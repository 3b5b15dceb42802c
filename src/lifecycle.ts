/**
 * A part of the broker that holds resources (ports, timers, connections)
 * between start and stop.
 */
export interface Component {
  /** Resolves once the part works; rejects, holding nothing, if it cannot. */
  start(): Promise<void>;
  /** Lets go of everything, finishing what it owes others by `deadline` (a time on the broker's clock). */
  stop(deadline: number): Promise<void>;
}

/**
 * Starts parts in the order given and stops them in reverse, so that each part
 * can rely on the ones before it for as long as it runs. If one fails to
 * start, those already started are stopped before the error is passed on.
 */
export class Lifecycle {
  private started: Component[] = [];

  constructor(private readonly parts: readonly Component[]) {}

  async start(deadlineOnFailure: () => number): Promise<void> {
    for (const part of this.parts) {
      try {
        await part.start();
      } catch (err) {
        await this.stop(deadlineOnFailure());
        throw err;
      }
      this.started.push(part);
    }
  }

  async stop(deadline: number): Promise<void> {
    const started = this.started;
    this.started = [];
    for (let i = started.length - 1; i >= 0; i--) await (started[i] as Component).stop(deadline);
  }
}
