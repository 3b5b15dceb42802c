/**
 * The last `capacity` ids remembered, oldest forgotten first: enough to tell a
 * late answer to a request that ended (its client left, or it timed out) from
 * an answer to a request that never was, in bounded memory.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
  }

  /** Forgets `id`, saying whether it was remembered. */
  take(id: string): boolean {
    return this.ids.delete(id);
  }
}
