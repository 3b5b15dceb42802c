import type { OutgoingEvent } from '../backends/backend-link';
import { RingBuffer } from './ring-buffer';

/**
 * Events held while no backend can take them, bounded twice: at most
 * `capacity` entries and `maxChars` characters of lines (lines are ASCII, so
 * characters are bytes). Past either bound the oldest events are dropped and
 * counted; an event larger than `maxChars` on its own is dropped at once.
 */
export class EventQueue {
  private readonly ring: RingBuffer<OutgoingEvent>;
  private chars = 0;
  private droppedCount = 0;

  constructor(
    capacity: number,
    private readonly maxChars: number,
  ) {
    this.ring = new RingBuffer(capacity);
  }

  get length(): number {
    return this.ring.length;
  }

  get bytes(): number {
    return this.chars;
  }

  /** Events dropped since the queue was made: full, too large, or a queue of size 0. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Appends `event`; returns how many events were dropped to make room (or 1 if `event` itself was). */
  push(event: OutgoingEvent): number {
    const size = event.line.length;
    if (size > this.maxChars || this.ring.capacity === 0) {
      this.droppedCount++;
      return 1;
    }
    let dropped = 0;
    while (this.ring.length > 0 && this.chars + size > this.maxChars) {
      this.chars -= (this.ring.shift() as OutgoingEvent).line.length;
      dropped++;
    }
    const pushedOut = this.ring.push(event);
    if (pushedOut !== undefined) {
      this.chars -= pushedOut.line.length;
      dropped++;
    }
    this.chars += size;
    this.droppedCount += dropped;
    return dropped;
  }

  shift(): OutgoingEvent | undefined {
    const event = this.ring.shift();
    if (event !== undefined) this.chars -= event.line.length;
    return event;
  }

  peek(): OutgoingEvent | undefined {
    return this.ring.peek();
  }
}
