/**
 * LineFramer against a reference model, on random byte streams cut at random
 * points (fast-check). The model is the framing rule of docs/protocol.md ("Ports and framing") in four lines:
 * split on `\n`, strip one trailing `\r`, skip empty lines, and report a line
 * longer than maxLine by its length (after stripping) instead of emitting it.
 * Each line is decoded alone, so the framer's decoding of many lines at once
 * must agree with it even on invalid UTF-8.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineFramer } from '../../src/protocol/line-framer';

type Event = { line: string } | { oversized: number };

/** What the framer must report for `stream`, in order. The unterminated tail is held, not reported. */
function reference(stream: Buffer, maxLine: number): { events: Event[]; pending: number } {
  const events: Event[] = [];
  let start = 0;
  for (let nl = stream.indexOf(10); nl !== -1; nl = stream.indexOf(10, start)) {
    let end = nl;
    if (end > start && stream[end - 1] === 13) end--;
    const length = end - start;
    if (length > maxLine) events.push({ oversized: length });
    else if (length > 0) events.push({ line: stream.toString('utf8', start, end) });
    start = nl + 1;
  }
  return { events, pending: stream.length - start };
}

/** Runs the framer over `stream` cut at `cuts`; each chunk is a fresh buffer, scribbled over after push (the socket may reuse it). */
function frame(stream: Buffer, cuts: number[], maxLine: number): { events: Event[]; framer: LineFramer } {
  const events: Event[] = [];
  const framer = new LineFramer(
    maxLine,
    (line) => events.push({ line }),
    (bytes) => events.push({ oversized: bytes }),
  );
  let from = 0;
  for (const cut of [...cuts, stream.length]) {
    const chunk = Buffer.from(stream.subarray(from, cut));
    framer.push(chunk);
    chunk.fill(0x23);
    from = cut;
  }
  return { events, framer };
}

const MAX_LINE = 24;

/** A byte of line content: never `\n`; `\r` often, so that it lands everywhere (mid-line, before the `\n`, at chunk ends). */
const contentByte = fc.oneof(
  { weight: 1, arbitrary: fc.constant(13) },
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 255 }).filter((b) => b !== 10) },
);

/** One line: short (often blank), around maxLine (the edges), or well over it. */
const lineContent = fc.oneof(
  fc.array(contentByte, { maxLength: 6 }),
  fc.array(contentByte, { minLength: MAX_LINE - 2, maxLength: MAX_LINE + 3 }),
  fc.array(contentByte, { minLength: MAX_LINE + 4, maxLength: MAX_LINE * 6 }),
);

const ending = fc.constantFrom('\n', '\r\n', '\r\n', '\n');

const streamArb = fc
  .record({
    lines: fc.array(fc.tuple(lineContent, ending), { maxLength: 20 }),
    /** Bytes after the last newline: held by the framer, never reported. */
    tail: fc.array(contentByte, { maxLength: MAX_LINE * 3 }),
  })
  .map(({ lines, tail }) => Buffer.concat([...lines.map(([content, end]) => Buffer.concat([Buffer.from(content), Buffer.from(end)])), Buffer.from(tail)]));

/** A stream with cut points inside it, sorted; a repeated cut point makes an empty chunk, which must change nothing. */
const cutStream = streamArb.chain((stream) =>
  fc.record({
    stream: fc.constant(stream),
    cuts: fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }).map((cuts) => cuts.sort((a, b) => a - b)),
    maxLine: fc.constantFrom(MAX_LINE, MAX_LINE - 1, 1, 4),
  }),
);

test('LineFramer matches the reference framing on random streams cut at random points', () => {
  fc.assert(
    fc.property(cutStream, ({ stream, cuts, maxLine }) => {
      const expected = reference(stream, maxLine);
      const { events, framer } = frame(stream, cuts, maxLine);
      assert.deepEqual(events, expected.events);
      // What it holds is the unterminated tail, unless that tail is already known to be oversized (then it is counted, not kept).
      if (expected.pending <= maxLine) assert.equal(framer.pendingBytes, expected.pending);
      assert.ok(framer.pendingBytes <= maxLine + 1, `holds ${framer.pendingBytes} bytes, more than maxLine + 1`);
    }),
    { numRuns: 500 },
  );
});

test('LineFramer: the same stream gives the same events however it is cut (whole, byte by byte, random)', () => {
  fc.assert(
    fc.property(cutStream, ({ stream, cuts, maxLine }) => {
      const whole = frame(stream, [], maxLine).events;
      const bytewise = frame(stream, Array.from({ length: Math.max(0, stream.length - 1) }, (_, i) => i + 1), maxLine).events;
      assert.deepEqual(bytewise, whole);
      assert.deepEqual(frame(stream, cuts, maxLine).events, whole);
    }),
    { numRuns: 300 },
  );
});

test('an oversized line ending in \\r\\n is reported by its length without the \\r, however it is cut (empty chunks included)', () => {
  const stream = Buffer.from('x'.repeat(10) + '\r\nok\n');
  // [11, 11]: an empty chunk between the \r and the \n of a line being discarded.
  for (const cuts of [[], [8], [11], [11, 11], [6, 11, 11, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]]) {
    assert.deepEqual(frame(stream, cuts, 4).events, [{ oversized: 10 }, { line: 'ok' }], `cut at ${JSON.stringify(cuts)}`);
  }
});
