/**
 * LineFramer against the split-the-string framer most Node code starts with,
 * measured like for like: what the broker needs from a backend's byte stream
 * is each line as a string (BackendLink does `buffer.toString('utf8', start,
 * end)` on each range LineFramer hands out, then JSON.parse), and the naive
 * framer (`buffered += chunk.toString(); parts = buffered.split('\n');
 * buffered = parts.pop()`) yields strings. So each side here frames a stream
 * and turns every line into a string, which its callback takes the length of.
 *
 * Workloads (the lines are backend action lines of exactly the given size, in
 * ASCII so that the naive `chunk.toString()` stays correct at read edges):
 *
 *  - small:  200-byte lines in 64 KiB reads (loopback bursts);
 *  - mss:    4 KiB lines in 1448-byte reads (MSS-sized reads off a real network);
 *  - large:  64 KiB lines in 16 KiB reads;
 *  - mix:    line sizes drawn with a fixed seed (80% 150-250 B, 15% 1-8 KiB,
 *            5% 16-128 KiB), cut into reads of sizes drawn from 1448..65536.
 *            Reported against the naive framer (framerVsNaive).
 *
 * One informational pair more: the mix with the router's JSON.parse of each
 * line on top, the figure a backend link actually pays per line.
 *
 * And LineFramer against the decode floor on every workload: the least any
 * framer must do, decode each read once and cut the text at each newline
 * (not a framer: a line spread over reads comes out in pieces). Both sides
 * spend their time in the same primitives (utf8 decode, indexOf, slice), so
 * their ratio stays put when the CPU or V8's JIT moves both, where the ratio
 * to the naive framer (string concatenation and re-splitting) does not. The
 * CI gate reads the floor pairs of workloads (a) and (c) (framerVsFloor).
 *
 *   node dist/bench/micro/framer.bench.js [--mitata]
 */
import assert from 'node:assert/strict';
import { LineFramer } from '../../src/protocol/line-framer';
import { prng as rng } from '../../test/helpers/prng';
import { do_not_optimize, mainOf, type MicroPair, type MicroSuite } from './common';

const MAX_LINE = 16 * 1024 * 1024; // the broker's default --max-line
const KiB = 1024;

/** The split-on-string framer most Node code starts with. */
export class NaiveFramer {
  private buffered = '';
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.buffered += chunk.toString();
    const parts = this.buffered.split('\n');
    this.buffered = parts.pop() as string;
    for (const line of parts) if (line.length > 0) this.onLine(line);
  }

  get pending(): string {
    return this.buffered;
  }
}

/**
 * The decode floor: each read decoded with one toString and cut at each
 * newline, nothing carried over between reads. Same primitives as LineFramer,
 * minus the work of joining lines spread over reads.
 */
export function decodeFloor(chunk: Buffer, onPiece: (piece: string) => void): void {
  const text = chunk.toString('utf8');
  let from = 0;
  for (;;) {
    const nl = text.indexOf('\n', from);
    const end = nl === -1 ? text.length : nl;
    if (end > from) onPiece(text.slice(from, end));
    if (nl === -1) return;
    from = nl + 1;
  }
}

export interface Stream {
  lines: string[];
  chunks: Buffer[];
  bytes: number;
  /** Chunks whose first byte is mid-line. */
  straddles: number;
}

export interface Workload {
  /** Key suffix: the pair is `framer.<key>`. */
  key: string;
  title: string;
  stream: Stream;
}

/** A uuid-shaped request id from the seeded PRNG. */
function uuidFrom(rand: () => number): string {
  const hex = (n: number) => Math.floor(rand() * 16 ** n).toString(16).padStart(n, '0');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(6)}${hex(6)}`;
}

const WORDS = ['hello', 'world', 'strands', 'room', 'message', 'typing', 'ok', 'ping', 'the', 'quick', 'brown', 'fox', 'jumps', 'ack', 'status', 'ready'];

/**
 * One backend -> broker action line of exactly `bytes` bytes (ASCII; no
 * newline), or the shortest such line if `bytes` is below it (~150 bytes):
 * message_to_connection / message_to_room / broadcast carrying a client
 * message (JSON text, escaped inside the line) padded with words.
 */
export function actionLine(rand: () => number, bytes: number): string {
  const kind = rand();
  const action = kind < 0.6 ? 'message_to_connection' : kind < 0.9 ? 'message_to_room' : 'broadcast';
  const target = kind < 0.6 ? { conn_id: `c${Math.floor(rand() * 100000)}` } : kind < 0.9 ? { room_id: `room-${Math.floor(rand() * 500)}` } : {};
  const from = `u${Math.floor(rand() * 10000)}`;
  const request_id = uuidFrom(rand);
  const build = (text: string) => JSON.stringify({ request_id, action, params: { ...target, message: JSON.stringify({ type: 'chat', from, text }) } });
  const need = bytes - build('').length;
  let text = '';
  while (text.length < need) text += (text ? ' ' : '') + (WORDS[Math.floor(rand() * WORDS.length)] as string);
  return build(text.slice(0, Math.max(0, need)));
}

/** Joins lines with `\n` and cuts the bytes into reads of the sizes `readSize()` returns, each in its own memory. */
export function cut(lines: string[], readSize: () => number): Stream {
  const all = Buffer.from(lines.join('\n') + '\n', 'latin1');
  const chunks: Buffer[] = [];
  let straddles = 0;
  for (let off = 0; off < all.length; ) {
    const end = Math.min(off + readSize(), all.length);
    chunks.push(Buffer.from(all.subarray(off, end))); // own memory, like a socket read
    if (off > 0 && all[off - 1] !== 10) straddles++;
    off = end;
  }
  return { lines, chunks, bytes: all.length, straddles };
}

/** `count` lines of exactly `lineBytes` bytes (newline excluded), in reads of `readBytes`. */
export function fixedStream(lineBytes: number, readBytes: number, count: number, seed: number): Stream {
  const rand = rng(seed);
  const lines = Array.from({ length: count }, () => actionLine(rand, lineBytes));
  for (const l of lines) assert.equal(l.length, lineBytes);
  return cut(lines, () => readBytes);
}

const between = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

/**
 * The realistic mix: line sizes 80% 150-250 B, 15% 1-8 KiB, 5% 16-128 KiB
 * (fixed seed), until `targetBytes`; reads of sizes drawn from 1448..65536.
 */
export function mixStream(targetBytes = 4 * 1024 * KiB, seed = 2024): Stream {
  const rand = rng(seed);
  const lines: string[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    const p = rand();
    const size = p < 0.8 ? between(rand, 150, 250) : p < 0.95 ? between(rand, 1 * KiB, 8 * KiB) : between(rand, 16 * KiB, 128 * KiB);
    const line = actionLine(rand, size);
    lines.push(line);
    bytes += line.length + 1;
  }
  const readRand = rng(seed + 1);
  return cut(lines, () => between(readRand, 1448, 64 * KiB));
}

export function workloads(): Workload[] {
  const describe = (s: Stream) => `${s.lines.length} lines, ${(s.bytes / KiB).toFixed(0)} KiB, ${s.chunks.length} reads`;
  const small = fixedStream(200, 64 * KiB, 5000, 7); // ~1 MiB
  const mss = fixedStream(4 * KiB, 1448, 256, 8); // 1 MiB
  const large = fixedStream(64 * KiB, 16 * KiB, 32, 9); // 2 MiB
  const mix = mixStream();
  return [
    { key: 'small', title: `(a) 200-byte lines in 64 KiB reads (${describe(small)})`, stream: small },
    { key: 'mss', title: `(b) 4 KiB lines in 1448-byte reads (${describe(mss)})`, stream: mss },
    { key: 'large', title: `(c) 64 KiB lines in 16 KiB reads (${describe(large)})`, stream: large },
    { key: 'mix', title: `(d) mix: 80% ~200 B, 15% 1-8 KiB, 5% 16-128 KiB lines in 1448..65536-byte reads (${describe(mix)})`, stream: mix },
  ];
}

/** Asserts that both framers, as benchmarked (each line decoded to a string), yield exactly the source lines, and that the stream loops cleanly. */
export function assertSameLines(stream: Stream): void {
  const ours: string[] = [];
  const naive: string[] = [];
  const lf = new LineFramer(MAX_LINE, (line) => ours.push(line), () => assert.fail('oversized'));
  const nf = new NaiveFramer((line) => naive.push(line));
  for (let pass = 0; pass < 2; pass++) {
    for (const c of stream.chunks) {
      lf.push(c);
      nf.push(c);
    }
    assert.equal(lf.pendingBytes, 0, 'stream must end on a line boundary');
    assert.equal(nf.pending, '');
  }
  const expected = [...stream.lines, ...stream.lines];
  assert.equal(ours.length, expected.length, 'LineFramer line count');
  assert.equal(naive.length, expected.length, 'naive framer line count');
  for (let i = 0; i < expected.length; i++) {
    if (ours[i] !== expected[i]) assert.fail(`LineFramer line ${i} differs from the source`);
    if (naive[i] !== expected[i]) assert.fail(`naive framer line ${i} differs from the source`);
  }
}

/** Asserts that the decode floor, as benchmarked, decodes every byte of the stream but its newlines. */
export function assertFloorDecodesAll(stream: Stream): void {
  let chars = 0;
  for (const c of stream.chunks) decodeFloor(c, (piece) => (chars += piece.length));
  assert.equal(chars, stream.bytes - stream.lines.length, 'the floor decodes every byte but the newlines');
}

// The factories below are the same shape on purpose, one per side, so that
// no call site's type feedback is shared between the framers.
function oursCase(w: Workload): MicroPair['ours'] {
  const chunks = w.stream.chunks;
  let chars = 0;
  const lf = new LineFramer(MAX_LINE, (line) => (chars += line.length), () => {});
  return {
    key: `framer.${w.key}.ours`,
    name: `LineFramer (${w.key})`,
    items: w.stream.lines.length,
    unit: 'line',
    fn: () => {
      for (let i = 0; i < chunks.length; i++) lf.push(chunks[i] as Buffer);
      do_not_optimize(chars);
    },
  };
}

function naiveCase(w: Workload): MicroPair['naive'] {
  const chunks = w.stream.chunks;
  let chars = 0;
  const nf = new NaiveFramer((line) => (chars += line.length));
  return {
    key: `framer.${w.key}.naive`,
    name: `naive toString + split (${w.key})`,
    items: w.stream.lines.length,
    unit: 'line',
    fn: () => {
      for (let i = 0; i < chunks.length; i++) nf.push(chunks[i] as Buffer);
      do_not_optimize(chars);
    },
  };
}

function floorCase(w: Workload): MicroPair['naive'] {
  const chunks = w.stream.chunks;
  let chars = 0;
  const onPiece = (piece: string): void => {
    chars += piece.length;
  };
  return {
    key: `framer.floor.${w.key}.floor`,
    name: `decode floor (${w.key})`,
    items: w.stream.lines.length,
    unit: 'line',
    fn: () => {
      for (let i = 0; i < chunks.length; i++) decodeFloor(chunks[i] as Buffer, onPiece);
      do_not_optimize(chars);
    },
  };
}

/** The workload on which framerVsNaive is read. */
export const NAIVE_WORKLOAD = 'mix';
/**
 * The workloads on whose floor pairs the gate's framerVsFloor is read: whole
 * lines in big reads (a) and lines spread over several reads (c). The mix (d)
 * is left out of the gate: its 16-128 KiB lines make both sides allocate
 * large buffers and strings, and its per-round ratio moves by +-25 % with the
 * garbage collector (docs/benchmarks.md, "The CI gate").
 */
export const FLOOR_WORKLOADS = ['small', 'large'] as const;

export function framerSuite(): MicroSuite {
  const ws = workloads();
  for (const w of ws) {
    assertSameLines(w.stream);
    assertFloorDecodesAll(w.stream);
  }
  const byKey = new Map(ws.map((w) => [w.key, w]));
  assert.ok((byKey.get('small') as Workload).stream.straddles >= (byKey.get('small') as Workload).stream.chunks.length - 2, 'lines straddle the read edges');
  const pairs: MicroPair[] = ws.map((w) => ({ key: `framer.${w.key}`, title: w.title, ours: oursCase(w), naive: naiveCase(w) }));

  // The same workloads against the decode floor (a fresh LineFramer per pair).
  for (const w of ws) pairs.push({ key: `framer.floor.${w.key}`, title: `${w.title}, LineFramer against the decode floor`, ours: { ...oursCase(w), key: `framer.floor.${w.key}.ours` }, naive: floorCase(w) });

  // Informational: the mix plus the router's JSON.parse of each line.
  const mix = byKey.get(NAIVE_WORKLOAD) as Workload;
  const mixChunks = mix.stream.chunks;
  let oursParsed = 0;
  const lfParse = new LineFramer(MAX_LINE, (line) => (oursParsed += (JSON.parse(line) as { action: string }).action.length), () => {});
  let naiveParsed = 0;
  const nfParse = new NaiveFramer((line) => (naiveParsed += (JSON.parse(line) as { action: string }).action.length));
  pairs.push({
    key: 'framer.mixParse',
    title: '(d) mix + JSON.parse of each line (informational)',
    ours: {
      key: 'framer.mixParse.ours',
      name: 'LineFramer + toString + JSON.parse (mix)',
      items: mix.stream.lines.length,
      unit: 'line',
      fn: () => {
        for (let i = 0; i < mixChunks.length; i++) lfParse.push(mixChunks[i] as Buffer);
        do_not_optimize(oursParsed);
      },
    },
    naive: {
      key: 'framer.mixParse.naive',
      name: 'naive + JSON.parse (mix)',
      items: mix.stream.lines.length,
      unit: 'line',
      fn: () => {
        for (let i = 0; i < mixChunks.length; i++) nfParse.push(mixChunks[i] as Buffer);
        do_not_optimize(naiveParsed);
      },
    },
  });
  return { name: 'framer', pairs, singles: [] };
}

if (require.main === module) mainOf(framerSuite);
