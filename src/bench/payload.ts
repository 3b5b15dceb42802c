/**
 * Bench messages are text frames of exactly --payload bytes:
 * `<seq>:<sendTimeUs>:` followed by padding. The send time is the *intended*
 * send time in µs since the epoch (see clock.ts), so receivers measure latency
 * without a lookup table and without JSON.
 */

const COLON = 0x3a;
const DIGIT_0 = 0x30;
const PAD = 0x78; // 'x'

/** Room for a 14-digit sequence number, a 16-digit timestamp and both colons. */
export const MIN_PAYLOAD = 32;

/** Writes headers into one pre-padded buffer; the caller sends it before the next write (ws copies it when framing). */
export class PayloadWriter {
  private readonly buffer: Buffer;
  private headerEnd = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < MIN_PAYLOAD) throw new RangeError(`payload must be at least ${MIN_PAYLOAD} bytes, got ${size}`);
    this.buffer = Buffer.alloc(size, PAD);
  }

  /** `timeUs` must be a whole number. */
  write(seq: number, timeUs: number): Buffer {
    const buf = this.buffer;
    let end = writeDigits(buf, 0, seq);
    buf[end++] = COLON;
    end = writeDigits(buf, end, timeUs);
    buf[end++] = COLON;
    // A shorter header than the last one must not leave stale digits behind.
    if (end < this.headerEnd) buf.fill(PAD, end, this.headerEnd);
    this.headerEnd = end;
    return buf;
  }

  /** The same message as a string, for senders (the backend SDK) that take text. */
  text(seq: number, timeUs: number): string {
    return this.write(seq, timeUs).toString('latin1');
  }
}

/** Writes the non-negative integer `n` in decimal at `at`; returns the index after it. */
function writeDigits(buf: Buffer, at: number, n: number): number {
  let len = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
  for (let i = at + len - 1; i >= at; i--) {
    const q = Math.floor(n / 10);
    buf[i] = DIGIT_0 + (n - q * 10);
    n = q;
  }
  return at + len;
}

/** The send time (µs) from a message's header, or -1 when the message is not one of ours. */
export function readSendTime(data: Buffer): number {
  const len = data.length;
  let i = 0;
  while (i < len && data[i] !== COLON) i++;
  let time = 0;
  const first = ++i;
  for (; i < len; i++) {
    const c = data[i]!;
    if (c === COLON) return i > first ? time : -1;
    const d = c - DIGIT_0;
    if (d < 0 || d > 9) return -1;
    time = time * 10 + d;
  }
  return -1;
}
