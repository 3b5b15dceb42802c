/**
 * Every byte the broker writes to a backend is ASCII: non-ASCII text from
 * clients, backends and HTTP headers travels as JSON escapes and parses back
 * to the original.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brokerFor, clientFor, waitUntil } from '../helpers/fixtures';
import { RawBackend, type Line } from '../helpers/raw-backend';

test('every byte the broker writes to a backend is ASCII, and the lines parse back to the original text', async (t) => {
  const broker = await brokerFor(t, { heartbeatInterval: 20 });
  const metadata = { name: 'Zoë 日本', mood: '😀', nested: { k: 'ünïcödé' } };
  const backend = await RawBackend.connect(broker.tcpPort, {
    keepBytes: true,
    accept: (line) => (String(line.params.url).startsWith('/n') ? { accepted: false } : { accepted: true, client_id: 'zoë-😀', room_id: '/räum', metadata }),
  });
  t.after(() => backend.kill());
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');

  const client = await clientFor(t, broker.url('/r%C3%A4um?q=%C3%A9t%C3%A9'), { 'X-Name': 'caf\u00e9', 'X-Mid': 'a\u00e9b' });
  const opened = await backend.next('new_connection');
  assert.deepEqual(opened.params.context, { client_id: 'zoë-😀', room_id: '/räum', metadata });

  const text = 'héllo 😀 日本';
  client.ws.send(text);
  const message = await backend.next('new_message');
  assert.equal(message.params.message, text);
  assert.deepEqual(message.params.context, { client_id: 'zoë-😀', room_id: '/räum', metadata });

  // An error about a line with non-ASCII text in it.
  backend.sendRaw('{"request_id":"r-ü","action":"déjà vu","params":{}}\n');
  const error = await backend.next('error');
  assert.match(String(error.params.error), /déjà vu/);
  assert.match(String(error.params.error), /r-ü/);

  // A refusal report with a non-ASCII url in its context.
  const refused = clientFor(t, broker.url('/n%C3%A4h'));
  await assert.rejects(refused, (err: { status?: number }) => err.status === 403);
  const refusal = await backend.next('error', 5000, (l) => l.params.context?.url !== undefined);
  assert.equal(refusal.params.context.url, '/näh');

  await client.close();
  const gone = await backend.next('disconnected');
  assert.equal(gone.params.context.client_id, 'zoë-😀');
  await backend.next('heartbeat');

  const bytes = Buffer.concat(backend.chunks);
  const high = bytes.findIndex((byte) => byte >= 0x80);
  assert.equal(high, -1, `a byte >= 0x80 at ${high}: ${JSON.stringify(bytes.subarray(Math.max(0, high - 40), high + 40).toString('latin1'))}`);

  // Parsed from the bytes alone, the lines give the original text back.
  const lines = bytes.toString('ascii').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
  const request = lines.find((l) => l.action === 'connection_request' && l.params.url === '/räum');
  assert.ok(request, 'no connection_request for /räum');
  assert.equal(request.params.query, 'q=%C3%A9t%C3%A9');
  assert.ok(lines.some((l) => l.action === 'new_message' && l.params.message === text));
  assert.ok(lines.some((l) => l.action === 'new_connection' && l.params.context.metadata.mood === '😀'));
  const nameHeader = Object.entries(request.params.headers as Record<string, string[]>).find(([name]) => name.toLowerCase() === 'x-name');
  assert.ok(nameHeader, 'no X-Name header');
  const midHeader = Object.entries(request.params.headers as Record<string, string[]>).find(([name]) => name.toLowerCase() === 'x-mid');
  assert.ok(midHeader, 'no X-Mid header');
  // Sent by Node's http client as latin1 bytes (one 0xE9): non-ASCII at the broker, escaped on the wire to the backend.
  assert.match(String(midHeader[1][0]), /^a[^\x00-\x7f]+b$/);
  t.diagnostic(`X-Name (latin1 "café") reached the backend as ${JSON.stringify(nameHeader[1])}, X-Mid (latin1 "aéb") as ${JSON.stringify(midHeader[1])}`);
});
