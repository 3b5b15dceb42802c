/**
 * Receives each line as a byte range of a buffer: `buffer[start, end)`, without
 * its line ending. Valid only until the call returns.
 */
export type LineHandler = (buffer: Buffer, start: number, end: number) => void;

/**
 * Splits a TCP byte stream into newline-terminated lines without copying or
 * allocating per line: a complete line inside a chunk is handed out as a range
 * of that chunk, and only a trailing partial line is kept (as pieces, joined
 * once when its newline arrives, so a line spread over many reads costs one
 * copy, not one per read).
 *
 * A `\r` before the `\n` is dropped and blank lines are skipped. A line longer
 * than `maxLine` bytes is discarded up to its newline and reported once.
 */
export class LineFramer {
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private discarding = false;
  private discardedBytes = 0;
  /** Whether the last byte discarded was a `\r`, which the line's reported length leaves out. */
  private discardedCR = false;

  constructor(
    private readonly maxLine: number,
    private readonly onLine: LineHandler,
    private readonly onOversized: (bytes: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let start = 0;
    let nl = chunk.indexOf(10);
    if (nl === -1) {
      this.keep(chunk, 0);
      return;
    }
    if (this.discarding || this.tailBytes > 0) {
      this.finishTail(chunk, nl);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    while (nl !== -1) {
      this.emit(chunk, start, nl);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) this.keep(chunk, start);
  }

  /** Bytes held for a line not yet terminated (bounded by maxLine). */
  get pendingBytes(): number {
    return this.tailBytes;
  }

  private emit(chunk: Buffer, start: number, nl: number): void {
    let end = nl;
    if (end > start && chunk[end - 1] === 13) end--;
    if (end === start) return;
    if (end - start > this.maxLine) {
      this.onOversized(end - start);
      return;
    }
    this.onLine(chunk, start, end);
  }

  /** Completes the carried-over line with the first `nl` bytes of `chunk`. */
  private finishTail(chunk: Buffer, nl: number): void {
    if (this.discarding) {
      let total = this.discardedBytes + nl;
      if (nl > 0 ? chunk[nl - 1] === 13 : this.discardedCR) total--;
      this.discarding = false;
      this.discardedBytes = 0;
      this.onOversized(total);
      return;
    }
    this.tail.push(chunk.subarray(0, nl));
    const line = Buffer.concat(this.tail, this.tailBytes + nl);
    this.tail = [];
    this.tailBytes = 0;
    this.emit(line, 0, line.length);
  }

  /** Holds `chunk[start..]`, which has no newline, until the rest of its line arrives. */
  private keep(chunk: Buffer, start: number): void {
    const bytes = chunk.length - start;
    if (this.discarding) {
      this.discardedBytes += bytes;
      this.discardedCR = chunk[chunk.length - 1] === 13;
      return;
    }
    // +1 leaves room for a `\r` that the next read may turn into a line ending.
    if (this.tailBytes + bytes > this.maxLine + 1) {
      this.discarding = true;
      this.discardedBytes = this.tailBytes + bytes;
      this.discardedCR = chunk[chunk.length - 1] === 13;
      this.tail = [];
      this.tailBytes = 0;
      return;
    }
    // The caller may reuse its buffer after push returns, so the tail is copied.
    this.tail.push(Buffer.from(chunk.subarray(start)));
    this.tailBytes += bytes;
  }
}
