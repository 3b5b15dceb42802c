import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LineFramer } from '../../src/protocol/line-framer';
import { prng, randomInt } from '../helpers/prng';

interface Harness {
  framer: LineFramer;
  /** Lines emitted so far. */
  lines: string[];
  /** Byte counts reported for oversized lines. */
  oversized: number[];
}

function harness(maxLine: number): Harness {
  const lines: string[] = [];
  const oversized: number[] = [];
  const framer = new LineFramer(
    maxLine,
    (line) => lines.push(line),
    (bytes) => oversized.push(bytes),
  );
  return { framer, lines, oversized };
}

/**
 * Pushes each piece in its own buffer (not a view of a shared pool), then
 * scribbles over it: the framer must have copied whatever it keeps, because a
 * socket may reuse its read buffer once `push` returns.
 */
function pushPieces(framer: LineFramer, pieces: Buffer[]): void {
  for (const piece of pieces) {
    const chunk = Buffer.alloc(piece.length);
    piece.copy(chunk);
    framer.push(chunk);
    chunk.fill(0x23); // '#'
  }
}

/** What the framer must emit: lines split on `\n`, a trailing `\r` stripped, blanks dropped. */
function reference(input: string): string[] {
  return input
    .split('\n')
    .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line))
    .filter((line) => line !== '');
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    pieces.push(bytes.subarray(from, cut));
    from = cut;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

const LONG_INPUT =
  '{"request_id":"1","action":"broadcast"}\r\n' +
  '\n' +
  'alpha\n' +
  '\r\n' +
  '\n' +
  'beta gamma\r\n' +
  'euro € and grin 😀\n' +
  '\r\n' +
  'x\n' +
  'last line\r\n';

const SHORT_INPUT = 'ab\r\n\ncd\n\r\n€\n😀\r\n';

describe('LineFramer: split points', () => {
  test('the reference model is what it claims', () => {
    assert.deepEqual(reference(LONG_INPUT), [
      '{"request_id":"1","action":"broadcast"}',
      'alpha',
      'beta gamma',
      'euro € and grin 😀',
      'x',
      'last line',
    ]);
    assert.deepEqual(reference(SHORT_INPUT), ['ab', 'cd', '€', '😀']);
  });

  test('the whole input in one chunk', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.from(LONG_INPUT)]);
    assert.deepEqual(h.lines, reference(LONG_INPUT));
    assert.deepEqual(h.oversized, []);
    assert.equal(h.framer.pendingBytes, 0);
  });

  test('every single split point of a multi-line input', () => {
    const bytes = Buffer.from(LONG_INPUT);
    const expected = reference(LONG_INPUT);
    for (let i = 0; i <= bytes.length; i++) {
      const h = harness(1024);
      pushPieces(h.framer, splitAt(bytes, [i]));
      assert.deepEqual(h.lines, expected, `split at ${i}`);
      assert.deepEqual(h.oversized, [], `split at ${i}`);
      assert.equal(h.framer.pendingBytes, 0, `split at ${i}`);
    }
  });

  test('every pair of split points of a shorter input', () => {
    const bytes = Buffer.from(SHORT_INPUT);
    const expected = reference(SHORT_INPUT);
    let cases = 0;
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const h = harness(1024);
        pushPieces(h.framer, splitAt(bytes, [i, j]));
        assert.deepEqual(h.lines, expected, `split at ${i}, ${j}`);
        assert.deepEqual(h.oversized, [], `split at ${i}, ${j}`);
        cases++;
      }
    }
    assert.ok(cases > 200);
  });

  test('one byte per push', () => {
    const bytes = Buffer.from(LONG_INPUT);
    const h = harness(1024);
    pushPieces(h.framer, splitAt(bytes, Array.from({ length: bytes.length - 1 }, (_, k) => k + 1)));
    assert.deepEqual(h.lines, reference(LONG_INPUT));
  });

  test('empty chunks change nothing', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.alloc(0), Buffer.from('ab'), Buffer.alloc(0), Buffer.from('c\n'), Buffer.alloc(0)]);
    assert.deepEqual(h.lines, ['abc']);
  });

  test('a line without its newline is held, not emitted', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.from('one\ntwo')]);
    assert.deepEqual(h.lines, ['one']);
    assert.equal(h.framer.pendingBytes, 3);
    pushPieces(h.framer, [Buffer.from('\n')]);
    assert.deepEqual(h.lines, ['one', 'two']);
    assert.equal(h.framer.pendingBytes, 0);
  });
});

describe('LineFramer: CR and blank lines', () => {
  test('CRLF endings are stripped', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.from('a\r\nbb\r\nccc\n')]);
    assert.deepEqual(h.lines, ['a', 'bb', 'ccc']);
  });

  test('a \\r alone at a chunk end, then \\n in the next chunk', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.from('first\r\nsecond\r'), Buffer.from('\nthird\r'), Buffer.from('\n')]);
    assert.deepEqual(h.lines, ['first', 'second', 'third']);
    assert.equal(h.framer.pendingBytes, 0);
  });

  test('a chunk holding only \\r, then one holding only \\n', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.from('abc'), Buffer.from('\r'), Buffer.from('\n')]);
    assert.deepEqual(h.lines, ['abc']);
  });

  test('a \\r in the middle of a line is kept', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.from('a\rb\n')]);
    assert.deepEqual(h.lines, ['a\rb']);
  });

  test('blank lines, LF or CRLF, are skipped wherever they fall', () => {
    const h = harness(1024);
    pushPieces(h.framer, [Buffer.from('\n\n\r\n'), Buffer.from('\r'), Buffer.from('\n\nx\n\n'), Buffer.from('\n')]);
    assert.deepEqual(h.lines, ['x']);
    assert.deepEqual(h.oversized, []);
  });
});

describe('LineFramer: oversized lines (maxLine 8)', () => {
  const MAX = 8;

  test('a long line in one chunk is reported once with its byte count; the next lines come through', () => {
    const h = harness(MAX);
    pushPieces(h.framer, [Buffer.from('short\n' + 'x'.repeat(20) + '\nnext\nafter\n')]);
    assert.deepEqual(h.lines, ['short', 'next', 'after']);
    assert.deepEqual(h.oversized, [20]);
  });

  test('a long line pushed one byte at a time is reported once', () => {
    const bytes = Buffer.from('short\n' + 'x'.repeat(20) + '\nnext\n');
    const h = harness(MAX);
    for (const byte of bytes) pushPieces(h.framer, [Buffer.from([byte])]);
    assert.deepEqual(h.lines, ['short', 'next']);
    assert.deepEqual(h.oversized, [20]);
  });

  test('an oversized tail spanning several pushes before its newline', () => {
    const h = harness(MAX);
    pushPieces(h.framer, [Buffer.from('ok\nxxxxxx')]); // 6 bytes held
    assert.deepEqual(h.lines, ['ok']);
    pushPieces(h.framer, [Buffer.from('xxxxxx')]); // 12 > maxLine + 1: now discarding
    pushPieces(h.framer, [Buffer.from('xxxxxx')]);
    pushPieces(h.framer, [Buffer.from('xxxxxx')]);
    assert.deepEqual(h.oversized, [], 'not reported before its newline');
    assert.ok(h.framer.pendingBytes <= MAX + 1);
    pushPieces(h.framer, [Buffer.from('xx\nafter\nmore\n')]);
    assert.deepEqual(h.oversized, [26]);
    assert.deepEqual(h.lines, ['ok', 'after', 'more']);
    assert.equal(h.framer.pendingBytes, 0);
  });

  test('an oversized line whose newline arrives alone in the next chunk', () => {
    const h = harness(MAX);
    pushPieces(h.framer, [Buffer.from('x'.repeat(30)), Buffer.from('\n'), Buffer.from('ok\n')]);
    assert.deepEqual(h.oversized, [30]);
    assert.deepEqual(h.lines, ['ok']);
  });

  test('a line of maxLine + 1 bytes is oversized, however it is split', () => {
    const bytes = Buffer.from('a\n123456789\nb\n');
    for (let i = 0; i <= bytes.length; i++) {
      const h = harness(MAX);
      pushPieces(h.framer, splitAt(bytes, [i]));
      assert.deepEqual(h.lines, ['a', 'b'], `split at ${i}`);
      assert.deepEqual(h.oversized, [9], `split at ${i}`);
    }
  });

  test('a line of exactly maxLine bytes passes, however it is split, LF or CRLF', () => {
    for (const input of ['12345678\n', '12345678\r\n', 'a\n12345678\r\nb\n']) {
      const bytes = Buffer.from(input);
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          const h = harness(MAX);
          pushPieces(h.framer, splitAt(bytes, [i, j]));
          assert.deepEqual(h.lines, reference(input), `${JSON.stringify(input)} split at ${i}, ${j}`);
          assert.deepEqual(h.oversized, [], `${JSON.stringify(input)} split at ${i}, ${j}`);
        }
      }
    }
  });

  test('maxLine counts bytes, not characters', () => {
    const h = harness(MAX);
    // '€€' is 6 bytes, '€€€' 9 bytes.
    pushPieces(h.framer, [Buffer.from('€€\n€€€\n')]);
    assert.deepEqual(h.lines, ['€€']);
    assert.deepEqual(h.oversized, [9]);
  });

  test('several oversized lines in a row are each reported once', () => {
    const input = 'x'.repeat(10) + '\n' + 'y'.repeat(11) + '\n' + 'ok\n' + 'z'.repeat(40) + '\n';
    const bytes = Buffer.from(input);
    for (let i = 0; i <= bytes.length; i++) {
      const h = harness(MAX);
      pushPieces(h.framer, splitAt(bytes, [i]));
      assert.deepEqual(h.oversized, [10, 11, 40], `split at ${i}`);
      assert.deepEqual(h.lines, ['ok'], `split at ${i}`);
    }
  });

  test('the byte count of an oversized CRLF line does not depend on where the chunks split', () => {
    // The limit is checked without the `\r` (a 8-byte line + CRLF passes), so the
    // reported size of a too-long CRLF line should not count it either, and must
    // not change with the chunking of the same bytes.
    const bytes = Buffer.from('x'.repeat(20) + '\r\nok\n');
    const counts = new Set<number>();
    for (let i = 0; i <= bytes.length; i++) {
      const h = harness(MAX);
      pushPieces(h.framer, splitAt(bytes, [i]));
      assert.deepEqual(h.lines, ['ok'], `split at ${i}`);
      assert.equal(h.oversized.length, 1, `split at ${i}`);
      counts.add(h.oversized[0] as number);
    }
    assert.deepEqual([...counts], [20]);
  });

  test('randomized chunking against a reference model', () => {
    const rand = prng(0x5eed);
    for (let round = 0; round < 200; round++) {
      // Lines of 0..20 bytes; the ones that fit may end in CRLF.
      const expectedLines: string[] = [];
      const expectedOversized: number[] = [];
      let input = '';
      const count = randomInt(rand, 1, 12);
      for (let k = 0; k < count; k++) {
        const len = randomInt(rand, 0, 20);
        const line = String.fromCharCode(97 + (k % 26)).repeat(len);
        if (len === 0) input += rand() < 0.5 ? '\n' : '\r\n';
        else if (len <= MAX) {
          input += line + (rand() < 0.5 ? '\n' : '\r\n');
          expectedLines.push(line);
        } else {
          input += line + '\n';
          expectedOversized.push(len);
        }
      }
      const bytes = Buffer.from(input);
      const cuts: number[] = [];
      for (let at = randomInt(rand, 0, 6); at < bytes.length; at += randomInt(rand, 1, 12)) cuts.push(at);
      const h = harness(MAX);
      pushPieces(h.framer, splitAt(bytes, cuts));
      assert.deepEqual(h.lines, expectedLines, `round ${round}: ${JSON.stringify(input)} cut at ${cuts}`);
      assert.deepEqual(h.oversized, expectedOversized, `round ${round}: ${JSON.stringify(input)} cut at ${cuts}`);
      assert.equal(h.framer.pendingBytes, 0);
    }
  });
});

describe('LineFramer: multi-byte UTF-8', () => {
  for (const [name, text] of [
    ['€ (3 bytes)', '€'],
    ['😀 (4 bytes)', '😀'],
    ['a mix', 'a€b😀c€😀'],
  ] as const) {
    test(`${name} split at every byte offset decodes correctly`, () => {
      const input = `${text}\n${text}\r\n`;
      const bytes = Buffer.from(input);
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          const h = harness(1024);
          pushPieces(h.framer, splitAt(bytes, [i, j]));
          assert.deepEqual(h.lines, [text, text], `split at ${i}, ${j}`);
        }
      }
    });
  }

  test('a 4-byte character pushed one byte at a time', () => {
    const h = harness(1024);
    pushPieces(h.framer, [...Buffer.from('😀\n')].map((b) => Buffer.from([b])));
    assert.deepEqual(h.lines, ['😀']);
  });
});

describe('LineFramer: memory bound', () => {
  test('pendingBytes stays within maxLine + 1 while a huge line streams in', () => {
    const MAX = 1024;
    const h = harness(MAX);
    let total = 0;
    const piece = Buffer.alloc(100, 0x78);
    for (let k = 0; k < 2000; k++) {
      pushPieces(h.framer, [piece]);
      total += piece.length;
      assert.ok(h.framer.pendingBytes <= MAX + 1, `after ${total} bytes: ${h.framer.pendingBytes}`);
    }
    assert.deepEqual(h.oversized, []);
    pushPieces(h.framer, [Buffer.from('\nok\n')]);
    assert.deepEqual(h.oversized, [total]);
    assert.deepEqual(h.lines, ['ok']);
    assert.equal(h.framer.pendingBytes, 0);
  });

  test('pendingBytes stays bounded when the huge line arrives one byte at a time', () => {
    const MAX = 8;
    const h = harness(MAX);
    for (let k = 0; k < 5000; k++) {
      h.framer.push(Buffer.from('y'));
      assert.ok(h.framer.pendingBytes <= MAX + 1);
    }
    h.framer.push(Buffer.from('\nz\n'));
    assert.deepEqual(h.oversized, [5000]);
    assert.deepEqual(h.lines, ['z']);
  });
});
