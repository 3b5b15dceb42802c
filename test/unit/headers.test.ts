import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addHeader, canonicalHeaderName } from '../../src/protocol/headers';

describe('canonicalHeaderName (Go textproto.CanonicalMIMEHeaderKey)', () => {
  const cases: [string, string][] = [
    ['authorization', 'Authorization'],
    ['Authorization', 'Authorization'],
    ['AUTHORIZATION', 'Authorization'],
    ['sec-websocket-key', 'Sec-Websocket-Key'],
    ['Sec-WebSocket-Key', 'Sec-Websocket-Key'],
    ['x-multi', 'X-Multi'],
    ['CONTENT-TYPE', 'Content-Type'],
    ['content-type', 'Content-Type'],
    ['user-agent', 'User-Agent'],
    ['www-authenticate', 'Www-Authenticate'],
    ['x--y', 'X--Y'],
    ['a1-b2', 'A1-B2'],
    ['x-1a', 'X-1a'], // a digit is not a letter: the letter after it is lower-cased
    ['1abc', '1abc'],
    ['-foo', '-Foo'],
    ['foo-', 'Foo-'],
    ['-', '-'],
    ['x_forwarded_for', 'X_forwarded_for'], // only '-' starts a new word
    ['x.y', 'X.y'],
    ["a!#$%&'*+.^_`|~z", "A!#$%&'*+.^_`|~z"], // every tchar punctuation is valid
    ['host', 'Host'],
    ['h', 'H'],
    ['', ''],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
      assert.equal(canonicalHeaderName(input), expected);
    });
  }

  // Like Go: a name holding a space or any byte that is not a token character
  // is returned exactly as given, even where letters would otherwise change.
  const unchanged = [
    'foo bar',
    'FOO BAR',
    'content type',
    ' leading',
    'trailing ',
    'x:y',
    'x-y:z',
    'a"b',
    'a(b)',
    'a,b',
    'a/b',
    'a;b',
    'a=b',
    'a?b',
    'a@b',
    'a[b]',
    'a\\b',
    'a{b}',
    'tab\there',
    'nul\u0000',
    'del\u007f',
    'héader', // non-ASCII
    'x-ÿ',
    'Ｘ-full-width',
    'emoji-😀',
  ];
  for (const input of unchanged) {
    test(`${JSON.stringify(input)} is returned unchanged`, () => {
      assert.equal(canonicalHeaderName(input), input);
    });
  }

  test('is idempotent', () => {
    for (const [input] of cases) {
      const once = canonicalHeaderName(input);
      assert.equal(canonicalHeaderName(once), once);
    }
  });
});

describe('addHeader', () => {
  test('keeps every value in order under one canonical key', () => {
    const headers: Record<string, string[]> = Object.create(null);
    addHeader(headers, 'x-multi', 'one');
    addHeader(headers, 'authorization', 'Bearer t');
    addHeader(headers, 'X-MULTI', 'two');
    addHeader(headers, 'X-Multi', 'three');
    addHeader(headers, 'x-multi', 'two'); // duplicates are kept
    assert.deepEqual(Object.keys(headers), ['X-Multi', 'Authorization']);
    assert.deepEqual(headers['X-Multi'], ['one', 'two', 'three', 'two']);
    assert.deepEqual(headers['Authorization'], ['Bearer t']);
  });

  test('keeps empty values', () => {
    const headers: Record<string, string[]> = Object.create(null);
    addHeader(headers, 'x-empty', '');
    addHeader(headers, 'x-empty', '');
    assert.deepEqual(headers['X-Empty'], ['', '']);
  });

  test('a name Go leaves unchanged is its own key', () => {
    const headers: Record<string, string[]> = Object.create(null);
    addHeader(headers, 'foo bar', '1');
    addHeader(headers, 'Foo-Bar', '2');
    assert.deepEqual(Object.keys(headers), ['foo bar', 'Foo-Bar']);
  });

  test("works on an Object.create(null) map with headers named '__proto__' and 'constructor'", () => {
    const headers: Record<string, string[]> = Object.create(null);
    addHeader(headers, '__proto__', 'p1');
    addHeader(headers, 'constructor', 'c1');
    addHeader(headers, '__proto__', 'p2');
    addHeader(headers, 'CONSTRUCTOR', 'c2');
    addHeader(headers, 'toString', 't');
    addHeader(headers, 'hasOwnProperty', 'h');
    assert.equal(Object.getPrototypeOf(headers), null, 'the map keeps its null prototype');
    assert.deepEqual(Object.keys(headers), ['__proto__', 'Constructor', 'Tostring', 'Hasownproperty']);
    assert.deepEqual(headers['__proto__'], ['p1', 'p2']);
    assert.deepEqual(headers['Constructor'], ['c1', 'c2']);
    assert.deepEqual(headers['Tostring'], ['t']);
    assert.deepEqual(headers['Hasownproperty'], ['h']);
    // What goes on the wire: every name an own key.
    assert.deepEqual(JSON.parse(JSON.stringify(headers)), JSON.parse('{"__proto__":["p1","p2"],"Constructor":["c1","c2"],"Tostring":["t"],"Hasownproperty":["h"]}'));
  });
});
