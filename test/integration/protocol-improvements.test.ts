/**
 * docs/protocol.md part 2 (where strands differs from the Go broker), row by row: where this broker deliberately does better
 * than the Go one, checked on the wire.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { TestBroker } from '../helpers/broker';
import { backendFor, brokerFor, clientFor, joinedClient, nextLine, takeAcross, takeAll, UUID_V4, waitUntil } from '../helpers/fixtures';
import { pyLine, pyRespond } from '../helpers/python-json';
import type { Line, RawBackend } from '../helpers/raw-backend';
import { rawUpgrade } from '../helpers/raw-upgrade';
import { openClient, upgradeStatus } from '../helpers/ws-client';

/** The next `error` event, checked for the shape every error event has. */
async function nextError(backend: RawBackend): Promise<Line> {
  const error = await backend.next('error');
  assert.equal(typeof error.request_id, 'string');
  assert.equal(typeof error.params.error, 'string');
  assert.equal(typeof error.params.context, 'object', 'context must always be an object');
  assert.notEqual(error.params.context, null, 'context must always be an object');
  return error;
}

test('context.metadata is the backend\'s metadata object, not its whole response; {} when none', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, {
    accept: (line) => {
      const id = new URLSearchParams(line.params.query).get('client_id');
      if (id === 'with') return { accepted: true, client_id: id, room_id: 'r', metadata: { role: 'admin', n: 1, nested: { ok: true } } };
      if (id === 'null') return { accepted: true, client_id: id, room_id: 'r', metadata: null };
      return { accepted: true, client_id: id, room_id: 'r' };
    },
  });
  const cases: [string, Record<string, unknown>][] = [
    ['with', { role: 'admin', n: 1, nested: { ok: true } }],
    ['without', {}],
    ['null', {}],
  ];
  for (const [id, metadata] of cases) {
    const { client, opened } = await joinedClient(t, broker, backend, id);
    assert.deepEqual(opened.params.context, { client_id: id, room_id: 'r', metadata });
    client.ws.send('hello');
    assert.deepEqual((await backend.next('new_message')).params.context.metadata, metadata);
  }
});

test('a response without client_id gets a fresh UUID v4; without room_id the room is the url', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: () => ({ accepted: true }) });
  const first = await clientFor(t, broker.url('/ws/lobby?x=1'));
  const second = await clientFor(t, broker.url('/ws/lobby'));
  const a = (await backend.next('new_connection')).params.context;
  const b = (await backend.next('new_connection')).params.context;
  for (const context of [a, b]) {
    assert.match(context.client_id, UUID_V4);
    assert.equal(context.room_id, '/ws/lobby');
    assert.deepEqual(context.metadata, {});
  }
  assert.notEqual(a.client_id, b.client_id);
  backend.send({ request_id: 'r', action: 'message_to_room', params: { room_id: '/ws/lobby', message: 'to the url room' } });
  assert.equal(await first.nextMessage(), 'to the url room');
  assert.equal(await second.nextMessage(), 'to the url room');
});

test('a response with client_id but no room_id: that client_id, room = url', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: (line) => ({ accepted: true, client_id: new URLSearchParams(line.params.query).get('client_id') }) });
  const { opened } = await joinedClient(t, broker, backend, 'carol', '/ws/room-7');
  assert.deepEqual(opened.params.context, { client_id: 'carol', room_id: '/ws/room-7', metadata: {} });
});

test('auth timeout: a backend that never answers -> HTTP 504 and an error event with url and remote_addr', async (t) => {
  const broker = await brokerFor(t, { authTimeout: 150 });
  const backend = await backendFor(t, broker.tcpPort);
  const status = upgradeStatus(broker.url('/slow/path?q=1'));
  const request = await backend.next('connection_request');
  assert.equal(await status, 504);
  const error = await nextError(backend);
  assert.match(error.params.error, /504|time/i);
  assert.equal(error.params.context.url, '/slow/path');
  assert.match(error.params.context.remote_addr, /^127\.0\.0\.1(:\d+)?$/);
  // Answering after the deadline (the backend was told) is ignored and counted; the link is kept.
  backend.answer(request, { accepted: true });
  await waitUntil(() => broker.broker.stats.connections.lateResponses === 1, 'the late answer is counted');
  const { client } = await joinedClientVia(t, broker, backend);
  assert.equal(takeAll(backend, (l) => l.action === 'error').length, 0, 'no error event about the late answer');
  assert.equal(client.ws.readyState, client.ws.OPEN);
});

/** A client accepted by hand through `backend` (for backends without auto-accept). */
async function joinedClientVia(t: TestContext, broker: TestBroker, backend: RawBackend) {
  const opening = clientFor(t, broker.url('/via?client_id=via'));
  const request = await backend.next('connection_request');
  backend.answer(request, { accepted: true, client_id: 'via' });
  return { client: await opening, request };
}

test('a backend killed while holding a connection_request: the request goes, same request_id, to the other backend and the client connects', async (t) => {
  const broker = await brokerFor(t);
  const backends = [await backendFor(t, broker.tcpPort), await backendFor(t, broker.tcpPort)];
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');
  const opening = openClient(broker.url('/retry?client_id=dave'));
  opening.catch(() => undefined);
  const [first, second] = await takeAcross(backends, 1, (l) => l.action === 'connection_request');
  const holder = first?.length ? 0 : 1;
  const original = (holder === 0 ? first : second)?.[0] as Line;
  const other = backends[1 - holder] as RawBackend;
  (backends[holder] as RawBackend).kill();
  const resent = await other.next('connection_request');
  assert.equal(resent.request_id, original.request_id);
  assert.deepEqual(resent.params, original.params);
  other.answer(resent, { accepted: true, client_id: 'dave' });
  const client = await opening;
  t.after(() => client.ws.terminate());
  assert.equal((await other.next('new_connection')).params.context.client_id, 'dave');
});

test('a backend killed while holding a connection_request with no other backend -> HTTP 503, counted, and not queued', async (t) => {
  const broker = await brokerFor(t, { queueSize: 10 });
  const backend = await backendFor(t, broker.tcpPort);
  const status = upgradeStatus(broker.url('/orphan?z=9'));
  await backend.next('connection_request');
  backend.kill();
  assert.equal(await status, 503);
  assert.equal(broker.broker.stats.errors.no_backend, 1);
  // No backend was left to tell; the report does not take a queue slot from clients' events.
  assert.equal(broker.broker.stats.queue.depth, 0);
});

test('rejected -> HTTP 403 before any upgrade; the backend gets an error event and never a new_connection', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const upgrading = rawUpgrade(broker.wsPort, '/private');
  const request = await backend.next('connection_request');
  backend.answer(request, { accepted: false, client_id: 'eve', room_id: '/private' });
  const answer = await upgrading;
  t.after(() => answer.socket.destroy());
  assert.equal(answer.status, 403);
  assert.equal(answer.headers['upgrade'], undefined, 'a refused upgrade must not carry Upgrade');
  const next = await nextLine(backend);
  assert.equal(next.action, 'error', `expected the error event, got ${next.action}`);
  assert.match(next.params.error, /403|reject/i);
  // The next client is accepted; its new_connection is the next line: none came for eve.
  const { client } = await joinedClientVia(t, broker, backend);
  const opened = await nextLine(backend);
  assert.equal(opened.action, 'new_connection');
  assert.equal(opened.params.context.client_id, 'via');
  await client.close();
});

test('{"accepted": false} and nothing else (the Python client when its handler raised) -> HTTP 403', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const status = upgradeStatus(broker.url('/boom'));
  const request = await backend.next('connection_request');
  pyRespond(backend, request, { accepted: false });
  assert.equal(await status, 403);
  assert.equal((await nextLine(backend)).action, 'error');
});

test('the query string is sent as `query`, raw (tokens travel there)', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  const cases: [string, string][] = [
    ['/ws?token=a%2Bb%3D%3D&room=x&room=y', 'token=a%2Bb%3D%3D&room=x&room=y'],
    ['/ws?flag', 'flag'],
    ['/ws', ''],
  ];
  for (const [path, query] of cases) {
    const status = upgradeStatus(broker.url(path));
    const request = await backend.next('connection_request');
    assert.equal(request.params.query, query, path);
    assert.equal(request.params.url, '/ws', path);
    backend.answer(request, { accepted: false });
    assert.equal(await status, 403);
  }
});

test('several sockets with one client_id: message_to_connection reaches all; each has its own new_connection and disconnected', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const bob1 = (await joinedClient(t, broker, backend, 'bob')).client;
  const bob2 = (await joinedClient(t, broker, backend, 'bob')).client;
  const alice = (await joinedClient(t, broker, backend, 'alice')).client;
  backend.send({ request_id: '1', action: 'message_to_connection', params: { conn_id: 'bob', message: 'to every bob' } });
  backend.send({ request_id: '2', action: 'message_to_connection', params: { conn_id: 'alice', message: 'marker' } });
  assert.equal(await bob1.nextMessage(), 'to every bob');
  assert.equal(await bob2.nextMessage(), 'to every bob');
  assert.equal(await alice.nextMessage(), 'marker', 'alice got a message for bob');

  await bob1.close();
  assert.equal((await backend.next('disconnected')).params.context.client_id, 'bob');
  backend.send({ request_id: '3', action: 'message_to_connection', params: { conn_id: 'bob', message: 'still here' } });
  assert.equal(await bob2.nextMessage(), 'still here');
  await bob2.close();
  assert.equal((await backend.next('disconnected')).params.context.client_id, 'bob');
  assert.equal(backend.lines.pending.filter((l) => l.action === 'disconnected').length, 0);
});

test('--balance client: each client\'s events all land, in order, on one backend', async (t) => {
  const broker = await brokerFor(t, { balance: 'client' });
  const backends = [await backendFor(t, broker.tcpPort, { accept: true }), await backendFor(t, broker.tcpPort, { accept: true })];
  await waitUntil(() => broker.broker.stats.backends.connected === 2, 'both backends are in the pool');
  const ids = Array.from({ length: 24 }, (_, i) => `client-${i}`);
  const clients = await Promise.all(ids.map((id) => clientFor(t, broker.url(`/aff?client_id=${id}`))));
  for (const client of clients) {
    client.ws.send('m1');
    client.ws.send('m2');
    client.ws.send('m3');
  }
  await Promise.all(clients.map((c) => c.close()));
  const isEvent = (l: Line): boolean => ['new_connection', 'new_message', 'disconnected'].includes(l.action);
  const perBackend = await takeAcross(backends, ids.length * 5, isEvent, 10_000);
  const owners = new Map<string, Set<number>>();
  perBackend.forEach((lines, b) => {
    for (const l of lines) {
      const id = l.params.context.client_id as string;
      owners.set(id, (owners.get(id) ?? new Set()).add(b));
    }
  });
  for (const id of ids) {
    const on = [...(owners.get(id) ?? [])];
    assert.equal(on.length, 1, `${id}'s events went to backends ${on.join(', ')}`);
    const sequence = (perBackend[on[0] as number] as Line[]).filter((l) => l.params.context.client_id === id).map((l) => l.action === 'new_message' ? l.params.message : l.action);
    assert.deepEqual(sequence, ['new_connection', 'm1', 'm2', 'm3', 'disconnected'], id);
  }
  // 24 clients over a consistent-hash ring of two backends: both get some (all on one has odds of 2^-23).
  assert.ok(perBackend.every((lines) => lines.length > 0), 'one backend got every client');
});

test('bad JSON from a backend -> error event naming the problem; the link stays up', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { client } = await joinedClient(t, broker, backend, 'alice');
  backend.sendRaw('{"action": "broadcast", "params": {"message": "cut\n');
  const error = await nextError(backend);
  assert.match(error.params.error, /json/i);
  assert.deepEqual(error.params.context, {});
  backend.sendRaw(pyLine('broadcast', { message: 'after bad json' }));
  assert.equal(await client.nextMessage(), 'after bad json');
  // Valid JSON that is not an object is refused the same way.
  backend.sendRaw('[1, 2, 3]\n"text"\n');
  assert.match((await nextError(backend)).params.error, /object/i);
  assert.match((await nextError(backend)).params.error, /object/i);
  backend.sendRaw(pyLine('broadcast', { message: 'after non-objects' }));
  assert.equal(await client.nextMessage(), 'after non-objects');
});

test('an unknown action -> error event naming the action and the offending request_id; the link stays up', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { client } = await joinedClient(t, broker, backend, 'alice');
  backend.sendRaw(pyLine('frobnicate', { x: 1 }, 'req-offending-42'));
  const error = await nextError(backend);
  assert.match(error.params.error, /frobnicate/);
  assert.match(error.params.error, /req-offending-42/);
  backend.sendRaw(pyLine('broadcast', { message: 'after unknown action' }));
  assert.equal(await client.nextMessage(), 'after unknown action');
});

test('a bad param (message_to_room without room_id) -> error event naming the param and request_id', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { client } = await joinedClient(t, broker, backend, 'alice');
  backend.sendRaw(pyLine('message_to_room', { message: 'where to?' }, 'req-no-room'));
  const error = await nextError(backend);
  assert.match(error.params.error, /room_id/);
  assert.match(error.params.error, /req-no-room/);
  backend.sendRaw(pyLine('message_to_connection', { conn_id: 'alice', message: 'ok' }));
  assert.equal(await client.nextMessage(), 'ok');
});

test('a line over --max-line -> error event, discarded; the link survives and the next line works', async (t) => {
  const maxLine = 1024;
  const broker = await brokerFor(t, { maxLine });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  const { client } = await joinedClient(t, broker, backend, 'alice');
  const lineOf = (bytes: number, tag: string): string => {
    const head = pyLine('broadcast', { message: tag }, 'r').length - 1; // without the newline
    return pyLine('broadcast', { message: tag + 'x'.repeat(bytes - head) }, 'r');
  };
  // Exactly --max-line bytes is accepted (and with a \r before the newline too).
  const exact = lineOf(maxLine, 'exact');
  assert.equal(exact.length, maxLine + 1);
  backend.sendRaw(exact);
  assert.ok((await client.nextMessage()).startsWith('exact'));
  backend.sendRaw(exact.replace(/\n$/, '\r\n'));
  assert.ok((await client.nextMessage()).startsWith('exact'));

  // One byte more, in one write.
  backend.sendRaw(lineOf(maxLine + 1, 'over') + pyLine('broadcast', { message: 'next' }));
  const error = await nextError(backend);
  assert.match(error.params.error, /max-line|line/i);
  assert.equal(await client.nextMessage(), 'next');

  // Far over, spread over several writes.
  const long = lineOf(maxLine * 4, 'long');
  backend.sendRaw(long.slice(0, 700));
  backend.sendRaw(long.slice(700, 1500));
  backend.sendRaw(long.slice(1500) + pyLine('broadcast', { message: 'next again' }));
  await nextError(backend);
  assert.equal(await client.nextMessage(), 'next again');
  assert.equal(client.messages.pending.length, 0);
});

test('a response for an unknown request_id -> error event naming it', async (t) => {
  const broker = await brokerFor(t);
  const backend = await backendFor(t, broker.tcpPort);
  backend.sendRaw(pyLine('response', { accepted: true, client_id: 'ghost', room_id: '/x', metadata: {} }, 'no-such-request'));
  const error = await nextError(backend);
  assert.match(error.params.error, /no-such-request/);
  assert.match(error.params.error, /unknown|expired/i);
  const { client } = await joinedClientVia(t, broker, backend);
  await client.close();
});
