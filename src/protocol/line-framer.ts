/** Receives each line, decoded as UTF-8 (invalid bytes become U+FFFD), without its line ending. */
type LineHandler = (line: string) => void;

/** A tail buffer grown past this for one long line is given back once that line is done. */
const TAIL_KEEP_BYTES = 64 * 1024;

/**
 * Splits a TCP byte stream into newline-terminated lines.
 *
 * The complete lines of a read are decoded with one `toString` and split as a
 * string: a native call per line would cost more than finding the line. This
 * is exact because `\n` never occurs inside a UTF-8 sequence. Only when that
 * stretch is longer than `maxLine` (so one of its lines might be) are the
 * lines found and measured in bytes one by one.
 *
 * A partial line at the end of a read is copied into one reusable tail buffer
 * (bounded by `maxLine`), so a line spread over many reads is copied once per
 * read and decoded once. A `\r` before the `\n` is dropped and blank lines are
 * skipped. A line longer than `maxLine` bytes is discarded up to its newline
 * and reported once, with its length.
 */
export class LineFramer {
  private tail = Buffer.allocUnsafe(0);
  private tailBytes = 0;
  private discarding = false;
  private discardedBytes = 0;
  /** Whether the last byte discarded was a `\r`, which the line's reported length leaves out. */
  private discardedCR = false;

  /** May be raised while in use (a backend's limit grows once it authenticates); what is held stays bounded by the old one. */
  constructor(
    public maxLine: number,
    private readonly onLine: LineHandler,
    private readonly onOversized: (bytes: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let start = 0;
    if (this.discarding || this.tailBytes > 0) {
      const nl = chunk.indexOf(10);
      if (nl === -1) {
        this.keep(chunk, 0);
        return;
      }
      this.finishTail(chunk, nl);
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(10);
    if (last >= start) {
      if (last - start <= this.maxLine) this.emitText(chunk.toString('utf8', start, last));
      else this.emitMeasured(chunk, start, last);
      start = last + 1;
    }
    if (start < chunk.length) this.keep(chunk, start);
  }

  /** Bytes held for a line not yet terminated (bounded by maxLine + 1). */
  get pendingBytes(): number {
    return this.tailBytes;
  }

  /** Emits the lines of `text`, which holds whole lines only and is no longer than maxLine bytes. */
  private emitText(text: string): void {
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      let end = nl === -1 ? text.length : nl;
      if (end > from && text.charCodeAt(end - 1) === 13) end--;
      if (end > from) this.onLine(text.slice(from, end));
      if (nl === -1) return;
      from = nl + 1;
    }
  }

  /** Emits the lines of `chunk[start, last]` one by one, measuring each in bytes. */
  private emitMeasured(chunk: Buffer, start: number, last: number): void {
    while (start <= last) {
      const nl = chunk.indexOf(10, start);
      this.emitBytes(chunk, start, nl);
      start = nl + 1;
    }
  }

  private emitBytes(bytes: Buffer, start: number, nl: number): void {
    let end = nl;
    if (end > start && bytes[end - 1] === 13) end--;
    if (end === start) return;
    if (end - start > this.maxLine) this.onOversized(end - start);
    else this.onLine(bytes.toString('utf8', start, end));
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
    const total = this.tailBytes + nl;
    const endsInCR = nl > 0 ? chunk[nl - 1] === 13 : this.tail[this.tailBytes - 1] === 13;
    if (total - (endsInCR ? 1 : 0) > this.maxLine) {
      this.onOversized(total - (endsInCR ? 1 : 0));
    } else {
      this.reserve(total);
      chunk.copy(this.tail, this.tailBytes, 0, nl);
      this.emitBytes(this.tail, 0, total);
    }
    this.tailBytes = 0;
    if (this.tail.length > TAIL_KEEP_BYTES) this.tail = Buffer.allocUnsafe(0);
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
      this.tailBytes = 0;
      if (this.tail.length > TAIL_KEEP_BYTES) this.tail = Buffer.allocUnsafe(0);
      return;
    }
    // Copied: the caller may reuse its buffer once push returns.
    this.reserve(this.tailBytes + bytes);
    chunk.copy(this.tail, this.tailBytes, start);
    this.tailBytes += bytes;
  }

  /** Grows the tail buffer to hold `bytes`, doubling so a long line costs few copies. */
  private reserve(bytes: number): void {
    if (bytes <= this.tail.length) return;
    const grown = Buffer.allocUnsafe(Math.min(Math.max(bytes, 2 * this.tail.length, 1024), this.maxLine + 1));
    this.tail.copy(grown, 0, 0, this.tailBytes);
    this.tail = grown;
  }
}
