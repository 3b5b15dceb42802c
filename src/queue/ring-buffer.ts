/**
 * A fixed-capacity FIFO over a preallocated array. When full, `push` drops the
 * oldest entry and counts it, so memory never grows past `capacity` entries.
 * A capacity of 0 holds nothing: every push is a drop.
 */
export class RingBuffer<T> {
  private readonly slots: (T | undefined)[];
  private head = 0;
  private size = 0;
  private droppedCount = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
    this.slots = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Entries dropped because the buffer was full (or has no capacity) since it was made. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Appends `item`; returns the entry it pushed out, if the buffer was full. */
  push(item: T): T | undefined {
    const capacity = this.capacity;
    if (capacity === 0) {
      this.droppedCount++;
      return item;
    }
    if (this.size === capacity) {
      const oldest = this.slots[this.head];
      this.slots[this.head] = item;
      this.head = this.head + 1 === capacity ? 0 : this.head + 1;
      this.droppedCount++;
      return oldest;
    }
    let tail = this.head + this.size;
    if (tail >= capacity) tail -= capacity;
    this.slots[tail] = item;
    this.size++;
    return undefined;
  }

  /** Removes and returns the oldest entry. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.size--;
    return item;
  }

  /** The oldest entry, left in place. */
  peek(): T | undefined {
    return this.size === 0 ? undefined : this.slots[this.head];
  }
}
