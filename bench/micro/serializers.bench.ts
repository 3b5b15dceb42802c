/**
 * The broker -> backend line serializers against `JSON.stringify({...}) + '\n'`
 * building the same line, with realistic payloads: a client's JSON chat
 * message, a context with metadata, a browser's upgrade headers.
 *
 * new_message / new_connection: ours fill a template around the context JSON
 * serialized once per socket (the hot-path rule); the naive version
 * stringifies the context object with every event, as a straightforward
 * implementation would. connection_request / error: ours go through
 * fast-json-stringify schemas.
 *
 * Every call serializes 16 events and joins them into one string, as
 * BackendLink.flush does with the lines of one event-loop turn: the templates
 * return ropes (V8 cons strings) whose copying happens at that join, so
 * timing the serializer call alone would flatter them. That bare figure is
 * kept as an informational pair (new_message_bare).
 *
 *   node dist/bench/micro/serializers.bench.js [--mitata]
 */
import assert from 'node:assert/strict';
import { Action, type ClientContext, type ConnectionRequestParams } from '../../src/protocol/actions';
import { addHeader } from '../../src/protocol/headers';
import { connectionRequestLine, errorLine, newConnectionLine, newMessageLine, nextEventId, serializeContext } from '../../src/protocol/serializers';
import { do_not_optimize, mainOf, type MicroPair, type MicroSuite } from './common';

const BATCH = 16;

export const CONTEXT: ClientContext = {
  client_id: '5b0c6b55-7a3e-4c4e-9d0f-3f1c2a9e8b71',
  room_id: 'room-42',
  metadata: { user_id: 'u-18273', name: 'Alice', role: 'member' },
};

/** What clients send: small JSON documents, as text. */
export const MESSAGES: string[] = [
  '{"type":"chat","text":"hello everyone"}',
  '{"type":"typing","on":true}',
  '{"type":"chat","text":"did you see the release notes for 2.4? the new room API looks great"}',
  '{"type":"ack","id":18273}',
  '{"type":"chat","text":"café at 5? ☕"}',
  '{"type":"move","x":128,"y":-42,"seq":991}',
  '{"type":"chat","text":"ok"}',
  '{"type":"presence","status":"away","since":1732601234}',
  '{"type":"chat","text":"line one\\nline two, with a \\"quote\\""}',
  '{"type":"ping","t":1732601234567}',
  '{"type":"reaction","target":"m-8812","emoji":"👍"}',
  '{"type":"chat","text":"the quick brown fox jumps over the lazy dog"}',
  '{"type":"typing","on":false}',
  '{"type":"read","upto":"m-8815"}',
  '{"type":"chat","text":"brb"}',
  '{"type":"cursor","doc":"d-7","pos":1042,"sel":[1042,1050]}',
];

export function upgradeHeaders(): Record<string, string[]> {
  const headers: Record<string, string[]> = Object.create(null); // as the gateway builds it
  const raw: [string, string][] = [
    ['host', 'chat.example.com'],
    ['connection', 'Upgrade'],
    ['pragma', 'no-cache'],
    ['cache-control', 'no-cache'],
    ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'],
    ['upgrade', 'websocket'],
    ['origin', 'https://chat.example.com'],
    ['sec-websocket-version', '13'],
    ['accept-encoding', 'gzip, deflate, br, zstd'],
    ['accept-language', 'en-US,en;q=0.9,fr;q=0.8'],
    ['cookie', 'session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTE4MjczIn0.c2lnbmF0dXJl; theme=dark'],
    ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ['sec-websocket-extensions', 'permessage-deflate; client_max_window_bits'],
  ];
  for (const [name, value] of raw) addHeader(headers, name, value);
  return headers;
}

export const REQUEST: ConnectionRequestParams = {
  headers: upgradeHeaders(),
  url: '/ws/room-42',
  remote_addr: '203.0.113.7:51234',
  query: 'token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTE4MjczIn0.c2lnbmF0dXJl&v=2',
};
const REQUEST_ID = '9f1c2e4a-3b5d-4c6e-8f70-1a2b3c4d5e6f';
const ERROR = '503: no backend connected to validate the connection';
const ERROR_CONTEXT = { url: REQUEST.url, remote_addr: REQUEST.remote_addr };

// The naive versions.
function naiveNewMessage(message: string, context: ClientContext): string {
  return JSON.stringify({ request_id: nextEventId(), action: Action.NewMessage, params: { message, context } }) + '\n';
}
function naiveNewConnection(context: ClientContext): string {
  return JSON.stringify({ request_id: nextEventId(), action: Action.NewConnection, params: { context } }) + '\n';
}
function naiveConnectionRequest(requestId: string, params: ConnectionRequestParams): string {
  return JSON.stringify({ request_id: requestId, action: Action.ConnectionRequest, params }) + '\n';
}
function naiveError(error: string, context: object = {}, requestId: string = nextEventId()): string {
  return JSON.stringify({ request_id: requestId, action: Action.Error, params: { error, context } }) + '\n';
}

/** Parses a line, checking its framing; event ids (a per-run counter) are checked for shape, then blanked. */
function parseLine(line: string): Record<string, unknown> {
  assert.ok(line.endsWith('\n'), 'a line ends with \\n');
  assert.equal(line.indexOf('\n'), line.length - 1, 'a line holds no other \\n');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(typeof parsed.request_id, 'string');
  return parsed;
}
function blankId(line: string): string {
  return line.replace(/^\{"request_id":"[0-9a-z]+"/, '{"request_id":""');
}

export interface Equivalence {
  /** Byte-identical once event ids are blanked (JSON.parse equality is asserted regardless). */
  identical: Record<string, boolean>;
}

/** Asserts that each serializer and its JSON.stringify version produce the same line. */
export function assertSameLines(): Equivalence {
  const contextJson = serializeContext(CONTEXT);
  const cases: [string, string, string, boolean][] = [
    ...MESSAGES.map((m): [string, string, string, boolean] => ['new_message', newMessageLine(m, contextJson), naiveNewMessage(m, CONTEXT), true]),
    ['new_connection', newConnectionLine(contextJson), naiveNewConnection(CONTEXT), true],
    ['connection_request', connectionRequestLine(REQUEST_ID, REQUEST), naiveConnectionRequest(REQUEST_ID, REQUEST), false],
    ['error', errorLine(ERROR, ERROR_CONTEXT), naiveError(ERROR, ERROR_CONTEXT), true],
    ['error', errorLine('invalid JSON'), naiveError('invalid JSON'), true],
  ];
  const identical: Record<string, boolean> = {};
  for (const [name, ours, naive, eventId] of cases) {
    const a = parseLine(ours);
    const b = parseLine(naive);
    if (eventId) {
      assert.match(a.request_id as string, /^[0-9a-z]+$/);
      a.request_id = b.request_id = '';
    }
    assert.deepEqual(a, b, `${name}: lines differ\n ours:  ${ours} naive: ${naive}`);
    const same = eventId ? blankId(ours) === blankId(naive) : ours === naive;
    identical[name] = (identical[name] ?? true) && same;
  }
  return { identical };
}

export function serializersSuite(): MicroSuite {
  assertSameLines();
  const contextJson = serializeContext(CONTEXT);
  const messages = MESSAGES;
  const mask = messages.length - 1;
  let sink = '';
  let m = 0;

  const pair = (key: string, title: string, ours: () => void, naive: () => void): MicroPair => ({
    key: `ser.${key}`,
    title,
    ours: { key: `ser.${key}.ours`, name: `${key}: ours`, items: BATCH, unit: 'event', fn: ours },
    naive: { key: `ser.${key}.naive`, name: `${key}: JSON.stringify`, items: BATCH, unit: 'event', fn: naive },
  });
  // One array per case, so that no two cases share a call site's type feedback.
  const batches = Array.from({ length: 8 }, () => new Array<string>(BATCH).fill(''));
  const [b0, b1, b2, b3, b4, b5, b6, b7] = batches as [string[], string[], string[], string[], string[], string[], string[], string[]];

  const pairs: MicroPair[] = [
    pair(
      'new_message',
      'new_message (template + context JSON cached per socket), + join',
      () => {
        for (let i = 0; i < BATCH; i++) b0[i] = newMessageLine(messages[m++ & mask] as string, contextJson);
        do_not_optimize(b0.join(''));
      },
      () => {
        for (let i = 0; i < BATCH; i++) b1[i] = naiveNewMessage(messages[m++ & mask] as string, CONTEXT);
        do_not_optimize(b1.join(''));
      },
    ),
    pair(
      'new_connection',
      'new_connection (template), + join',
      () => {
        for (let i = 0; i < BATCH; i++) b2[i] = newConnectionLine(contextJson);
        do_not_optimize(b2.join(''));
      },
      () => {
        for (let i = 0; i < BATCH; i++) b3[i] = naiveNewConnection(CONTEXT);
        do_not_optimize(b3.join(''));
      },
    ),
    pair(
      'connection_request',
      'connection_request (fast-json-stringify, 13 browser headers), + join',
      () => {
        for (let i = 0; i < BATCH; i++) b4[i] = connectionRequestLine(REQUEST_ID, REQUEST);
        do_not_optimize(b4.join(''));
      },
      () => {
        for (let i = 0; i < BATCH; i++) b5[i] = naiveConnectionRequest(REQUEST_ID, REQUEST);
        do_not_optimize(b5.join(''));
      },
    ),
    pair(
      'error',
      'error (fast-json-stringify), + join',
      () => {
        for (let i = 0; i < BATCH; i++) b6[i] = errorLine(ERROR, ERROR_CONTEXT);
        do_not_optimize(b6.join(''));
      },
      () => {
        for (let i = 0; i < BATCH; i++) b7[i] = naiveError(ERROR, ERROR_CONTEXT);
        do_not_optimize(b7.join(''));
      },
    ),
    pair(
      'new_message_bare',
      'new_message, serializer call alone (informational: leaves ours a rope to flatten later)',
      () => {
        for (let i = 0; i < BATCH; i++) sink = newMessageLine(messages[m++ & mask] as string, contextJson);
        do_not_optimize(sink);
      },
      () => {
        for (let i = 0; i < BATCH; i++) sink = naiveNewMessage(messages[m++ & mask] as string, CONTEXT);
        do_not_optimize(sink);
      },
    ),
  ];
  return { name: 'serializers', pairs, singles: [] };
}

if (require.main === module) mainOf(serializersSuite);
