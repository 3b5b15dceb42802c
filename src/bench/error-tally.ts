/** Distinct reasons kept, so a report can say what went wrong without keeping every error. */
const MAX_SAMPLES = 5;

/** Counts errors and keeps the first few distinct reasons. */
export class ErrorTally {
  count = 0;
  readonly samples: string[] = [];

  add(reason: string, count = 1): void {
    this.count += count;
    if (this.samples.length < MAX_SAMPLES && !this.samples.includes(reason)) this.samples.push(reason);
  }

  /** Adds another tally's count and reasons. */
  merge(count: number, samples: readonly string[]): void {
    this.count += count;
    for (const reason of samples) this.add(reason, 0);
  }
}
