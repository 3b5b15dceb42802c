import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClientContext, ConnectionRequestParams } from '../../src/protocol/actions';
import {
  HEARTBEAT_LINE,
  connectionRequestLine,
  disconnectedLine,
  errorLine,
  newConnectionLine,
  newMessageLine,
  nextEventId,
  serializeContext,
} from '../../src/protocol/serializers';

/** Asserts `line` is one NDJSON line (a single `\n`, at the end) and returns its parsed object. */
function parseLine(line: string): Record<string, unknown> {
  assert.equal(typeof line, 'string');
  assert.ok(line.endsWith('\n'), `ends in \\n: ${JSON.stringify(line)}`);
  assert.equal(line.indexOf('\n'), line.length - 1, `exactly one \\n, at the end: ${JSON.stringify(line)}`);
  assert.ok(!line.includes('\r'), `no raw \\r: ${JSON.stringify(line)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Checks the envelope and returns its request_id. */
function eventId(parsed: Record<string, unknown>): string {
  assert.equal(typeof parsed.request_id, 'string');
  assert.notEqual(parsed.request_id, '');
  return parsed.request_id as string;
}

const MESSAGES = [
  '',
  'plain',
  'say "hi"',
  'back\\slash and \\"escaped\\" \\n not a newline',
  'multi\nline\r\nwith CRLF\rand CR',
  'tab\there, NUL \u0000, BEL \u0007, ESC \u001b, DEL \u007f',
  'unicode: ünïcödé, 中文, العربية, Ελληνικά',
  'emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷',
  'separators: \u2028 and \u2029',
  'lone surrogates: \ud800 \udfff',
  '{"request_id":"x","action":"broadcast","params":{}}\n',
  '</script><script>',
  'x'.repeat(100_000),
];

const CONTEXTS: ClientContext[] = [
  { client_id: 'c1', room_id: '/ws/chat', metadata: {} },
  {
    client_id: 'ü "quoted" \\ 😀',
    room_id: 'room\nwith\u2028newlines',
    metadata: { user: { name: 'Zoë', roles: ['a', 'b'] }, n: 1.5, ok: true, none: null, text: 'line1\nline2' },
  },
];

describe('serializers: new_message', () => {
  for (const message of MESSAGES) {
    test(`message ${JSON.stringify(message.slice(0, 40))}${message.length > 40 ? '…' : ''}`, () => {
      for (const context of CONTEXTS) {
        const line = newMessageLine(message, serializeContext(context));
        const parsed = parseLine(line);
        eventId(parsed);
        assert.deepEqual(parsed, { request_id: parsed.request_id, action: 'new_message', params: { message, context } });
      }
    });
  }
});

describe('serializers: new_connection and disconnected', () => {
  for (const context of CONTEXTS) {
    test(`new_connection for ${JSON.stringify(context.client_id)}`, () => {
      const parsed = parseLine(newConnectionLine(serializeContext(context)));
      eventId(parsed);
      assert.deepEqual(parsed, { request_id: parsed.request_id, action: 'new_connection', params: { context } });
    });

    test(`disconnected for ${JSON.stringify(context.client_id)}`, () => {
      const parsed = parseLine(disconnectedLine(serializeContext(context)));
      eventId(parsed);
      assert.deepEqual(parsed, { request_id: parsed.request_id, action: 'disconnected', params: { context } });
    });
  }

  test('serializeContext is plain JSON of the context', () => {
    for (const context of CONTEXTS) assert.deepEqual(JSON.parse(serializeContext(context)), context);
  });

  test('every event line gets a fresh request_id', () => {
    const ctx = serializeContext(CONTEXTS[0] as ClientContext);
    const ids = [newMessageLine('m', ctx), newConnectionLine(ctx), disconnectedLine(ctx), newMessageLine('m', ctx)].map((l) => eventId(parseLine(l)));
    assert.equal(new Set(ids).size, ids.length);
  });
});

describe('serializers: connection_request', () => {
  test('a typical request', () => {
    const params: ConnectionRequestParams = {
      headers: { Authorization: ['Bearer abc'], 'Sec-Websocket-Key': ['dGhlIHNhbXBsZSBub25jZQ=='], 'X-Multi': ['1', '2', '3'] },
      url: '/ws/chat',
      remote_addr: '127.0.0.1:54321',
      query: 'token=abc&room=chat',
    };
    const id = '3f2b8c1e-4a5d-4e6f-8a7b-9c0d1e2f3a4b';
    const parsed = parseLine(connectionRequestLine(id, params));
    assert.deepEqual(parsed, { request_id: id, action: 'connection_request', params });
  });

  test('hostile strings in every field survive the round trip', () => {
    const headers: Record<string, string[]> = Object.create(null);
    headers['__proto__'] = ['proto "value"'];
    headers['Constructor'] = ['c'];
    headers['X-Weird'] = ['quote " backslash \\ newline \n cr \r tab \t', 'nul \u0000 sep \u2028\u2029', 'emoji 😀 lone \ud800', ''];
    headers['Ü-Header'] = ['non-ASCII name'];
    const params: ConnectionRequestParams = {
      headers,
      url: '/ws/ü "room"\n\u2028😀',
      remote_addr: '[::1]:8080',
      query: 'a="b"&c=\\d&e=%0A\n',
    };
    const id = 'id "with" \\ and \n';
    const line = connectionRequestLine(id, params);
    const parsed = parseLine(line);
    // JSON.parse makes '__proto__' an own key, as JSON.stringify of the input does.
    assert.deepEqual(parsed, JSON.parse(JSON.stringify({ request_id: id, action: 'connection_request', params })));
    const parsedHeaders = (parsed.params as { headers: Record<string, unknown> }).headers;
    assert.ok(Object.prototype.hasOwnProperty.call(parsedHeaders, '__proto__'), 'the __proto__ header is on the wire');
  });

  test('no headers, empty url and query', () => {
    const params: ConnectionRequestParams = { headers: {}, url: '', remote_addr: '', query: '' };
    assert.deepEqual(parseLine(connectionRequestLine('r', params)), { request_id: 'r', action: 'connection_request', params });
  });
});

describe('serializers: error', () => {
  test('default context is {} and the request_id is a fresh event id', () => {
    const a = parseLine(errorLine('backend said something odd'));
    const b = parseLine(errorLine('backend said something odd'));
    assert.deepEqual(a, { request_id: a.request_id, action: 'error', params: { error: 'backend said something odd', context: {} } });
    assert.notEqual(eventId(a), eventId(b));
  });

  test('with a client context, under a fresh request_id', () => {
    for (const context of CONTEXTS) {
      const parsed = parseLine(errorLine('unknown action "frobnicate" (request_id their-id-7)', context));
      assert.deepEqual(parsed.params, { error: 'unknown action "frobnicate" (request_id their-id-7)', context });
      assert.equal(parsed.action, 'error');
      assert.notEqual(parsed.request_id, 'their-id-7');
    }
  });

  test('error text with quotes, backslashes, newlines and unicode', () => {
    for (const error of MESSAGES) {
      const parsed = parseLine(errorLine(error));
      assert.deepEqual(parsed.params, { error, context: {} });
    }
  });

  test('an offending request_id that is itself hostile stays inside the error text', () => {
    const rid = 'evil"}\n{"action":"broadcast';
    const line = errorLine(`bad json (request_id ${rid})`);
    assert.equal(line.indexOf('\n'), line.length - 1);
    assert.equal((parseLine(line) as { params: { error: string } }).params.error, `bad json (request_id ${rid})`);
  });
});

describe('serializers: heartbeat', () => {
  test('HEARTBEAT_LINE', () => {
    assert.deepEqual(parseLine(HEARTBEAT_LINE), { request_id: 'heartbeat', action: 'heartbeat', params: {} });
  });
});

describe('serializers: nextEventId', () => {
  test('unique non-empty strings over 100k calls', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const id = nextEventId();
      assert.equal(typeof id, 'string');
      assert.ok(id.length > 0);
      seen.add(id);
    }
    assert.equal(seen.size, 100_000);
    assert.ok(!seen.has('heartbeat'));
  });
});
