/** Values pushed by event handlers, awaited one at a time by a test (no sleeps). */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: { accept: (item: T) => boolean; resolve: (item: T) => void }[] = [];

  push(item: T): void {
    const i = this.waiters.findIndex((w) => w.accept(item));
    if (i >= 0) {
      const [waiter] = this.waiters.splice(i, 1);
      waiter?.resolve(item);
      return;
    }
    this.items.push(item);
  }

  /** Everything received and not yet taken. */
  get pending(): readonly T[] {
    return this.items;
  }

  /** The next item matching `accept` (earlier non-matching items stay queued). */
  next(accept: (item: T) => boolean = () => true, timeoutMs = 5000, what = 'an event'): Promise<T> {
    const i = this.items.findIndex(accept);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0] as T);
    return new Promise((resolve, reject) => {
      const waiter = {
        accept,
        resolve: (item: T) => {
          clearTimeout(timer);
          resolve(item);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}
