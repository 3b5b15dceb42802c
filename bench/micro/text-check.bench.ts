/**
 * What making every text frame valid UTF-8 costs on the hot path.
 *
 * For each text message a backend sends to clients, BackendRouter calls
 * `message.isWellFormed()` and, only when that is false (a lone surrogate,
 * e.g. an emoji cut in half), `message.toWellFormed()`. The broker has
 * already paid for `JSON.parse` of the line that carried the message, so the
 * pair here is that parse with the check against the parse alone: the ratio
 * says what share of a line's handling the check adds. The singles give the
 * check per message on ASCII, on non-ASCII and on a message that needs the
 * repair, and the repair itself.
 *
 *   node dist/bench/micro/text-check.bench.js [--mitata]
 */
import assert from 'node:assert/strict';
import { do_not_optimize, mainOf, type MicroCase, type MicroSuite } from './common';
import { MESSAGES } from './serializers.bench';

/** A backend line per message, as one arrives to be routed. */
function roomLines(messages: readonly string[]): string[] {
  return messages.map((message, i) => JSON.stringify({ request_id: `r${i}`, action: 'message_to_room', params: { room_id: 'room-42', message } }));
}

const NON_ASCII = ['café at 5? ☕', 'naïve résumé', '日本語のメッセージです', 'Ελληνικά κείμενα', '👍 sounds good', 'Grüße aus München'];
/** Each ends in half an emoji: what a client cut at a UTF-16 boundary sends. */
const CUT = NON_ASCII.map((m) => `${m} ${'😀'.slice(0, 1)}`);

function checkCase(key: string, name: string, messages: readonly string[]): MicroCase {
  return {
    key,
    name,
    items: messages.length,
    unit: 'message',
    fn: () => {
      let ok = 0;
      for (const m of messages) if (m.isWellFormed()) ok++;
      do_not_optimize(ok);
    },
  };
}

export function textCheckSuite(): MicroSuite {
  assert.ok(MESSAGES.every((m) => m.isWellFormed()) && NON_ASCII.every((m) => m.isWellFormed()));
  assert.ok(CUT.every((m) => !m.isWellFormed() && m.toWellFormed().endsWith('\ufffd')));
  const lines = roomLines(MESSAGES);
  const parse = (check: boolean) => () => {
    let ok = 0;
    for (const line of lines) {
      const message = (JSON.parse(line) as { params: { message: string } }).params.message;
      if (!check || message.isWellFormed()) ok++;
    }
    do_not_optimize(ok);
  };
  return {
    name: 'text-check',
    pairs: [
      {
        key: 'text.parseAndCheck',
        title: 'JSON.parse of a message_to_room line, then isWellFormed (ours) vs the parse alone (the floor)',
        ours: { key: 'text.parseAndCheck.ours', name: 'parse + isWellFormed', items: lines.length, unit: 'line', fn: parse(true) },
        naive: { key: 'text.parseAndCheck.floor', name: 'parse alone', items: lines.length, unit: 'line', fn: parse(false) },
      },
    ],
    singles: [
      checkCase('text.check.ascii', 'isWellFormed, ASCII chat messages', MESSAGES),
      checkCase('text.check.nonAscii', 'isWellFormed, non-ASCII messages', NON_ASCII),
      checkCase('text.check.cut', 'isWellFormed, messages ending in half an emoji', CUT),
      {
        key: 'text.repair',
        name: 'toWellFormed, messages ending in half an emoji',
        items: CUT.length,
        unit: 'message',
        fn: () => {
          let length = 0;
          for (const m of CUT) length += m.toWellFormed().length;
          do_not_optimize(length);
        },
      },
    ],
  };
}

if (require.main === module) mainOf(textCheckSuite);
