/**
 * Who may talk to the broker: backend token
 * auth (docs/protocol.md, "auth"), TLS on both ports, allowed origins and
 * connection limits.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { StrandsBackend } from '../../src/sdk/backend';
import { within } from '../helpers/deadline';
import { backendFor, brokerFor, clientFor, takeAll, tolerateReset, waitUntil } from '../helpers/fixtures';
import { RawBackend, clientIdFromQuery, type Line } from '../helpers/raw-backend';
import { rawUpgrade } from '../helpers/raw-upgrade';
import { makeSelfSignedCert, type TlsFixture } from '../helpers/tls-fixture';
import { openClient, upgradeStatus } from '../helpers/ws-client';

const TOKEN = 's3cret';
const AUTH = { request_id: 'auth-1', action: 'auth', params: { token: TOKEN } };

/** Every line `backend` received and nobody took, in order. */
function everything(backend: RawBackend): Line[] {
  return takeAll(backend);
}

describe('--backend-token', () => {
  test('a backend whose first line is auth with the right token gets events, and a client connects through it', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    const backend = await backendFor(t, broker.tcpPort, { accept: true });
    backend.send(AUTH);
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is admitted');
    const client = await clientFor(t, broker.url('/room?client_id=alice'));
    const opened = await backend.next('new_connection');
    assert.deepEqual(opened.params.context, { client_id: 'alice', room_id: '/room', metadata: {} });
    client.ws.send('hello');
    assert.equal((await backend.next('new_message')).params.message, 'hello');
    backend.send({ request_id: 'm1', action: 'message_to_connection', params: { conn_id: 'alice', message: 'back' } });
    assert.equal(await client.nextMessage(), 'back');
    assert.deepEqual(everything(backend).filter((l) => l.action === 'error'), []);
  });

  test('a wrong token: an error event saying authentication failed and why, then the backend is disconnected', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    const backend = await backendFor(t, broker.tcpPort);
    backend.send({ request_id: 'auth-1', action: 'auth', params: { token: 'guess' } });
    const error = await backend.next('error');
    assert.match(error.params.error, /authentication failed/);
    assert.match(error.params.error, /invalid token/);
    assert.deepEqual(error.params.context, {});
    await backend.closed;
    assert.equal(broker.broker.stats.backends.connected, 0);
    assert.equal(await upgradeStatus(broker.url('/')), 503, 'a rejected backend must not take clients');
  });

  test('a token of the wrong type (a number) is refused like a wrong one', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    const backend = await backendFor(t, broker.tcpPort);
    backend.send({ request_id: 'auth-1', action: 'auth', params: { token: 12345 } });
    assert.match((await backend.next('error')).params.error, /authentication failed: invalid token/);
    await backend.closed;
    assert.equal(broker.broker.stats.backends.connected, 0);
  });

  for (const [what, first] of [
    ['a valid action other than auth', JSON.stringify({ request_id: 'b1', action: 'broadcast', params: { message: 'sneaky' } }) + '\n'],
    ['invalid JSON', 'this is not json\n'],
    ['auth without a token', JSON.stringify({ request_id: 'a1', action: 'auth', params: {} }) + '\n'],
  ] as const) {
    test(`a first line that is ${what}: an error event, then disconnected, and the line has no effect`, async (t) => {
      const broker = await brokerFor(t, { backendToken: TOKEN });
      const authed = await backendFor(t, broker.tcpPort, { accept: true });
      authed.send(AUTH);
      await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the authenticated backend is admitted');
      const watcher = await clientFor(t, broker.url('/room?client_id=watcher'));
      await authed.next('new_connection');

      const intruder = await backendFor(t, broker.tcpPort);
      intruder.sendRaw(first);
      const error = await intruder.next('error');
      assert.match(error.params.error, /^authentication failed: /);
      await intruder.closed;
      // A later message proves the watcher got nothing before it (the broadcast was not obeyed).
      authed.send({ request_id: 'm1', action: 'message_to_connection', params: { conn_id: 'watcher', message: 'ok' } });
      assert.equal(await watcher.nextMessage(), 'ok');
      assert.equal(broker.broker.stats.backends.connected, 1);
    });
  }

  test('a first line longer than 4096 bytes gets an authentication-failed error and a disconnect', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    const backend = await backendFor(t, broker.tcpPort);
    tolerateReset(backend);
    backend.sendRaw(JSON.stringify({ request_id: 'auth-1', action: 'auth', params: { token: TOKEN, pad: 'p'.repeat(5000) } }) + '\n');
    const error = await backend.next('error');
    t.diagnostic(`error text: ${String(error.params.error)}`);
    assert.match(String(error.params.error), /authentication failed/);
    assert.deepEqual(error.params.context, {});
    await within(backend.closed, 3000, 'the broker to disconnect the backend');
    assert.equal(broker.broker.stats.backends.connected, 0);
    assert.equal(broker.broker.stats.errors.auth_failed, 1);
  });

  test('only the first line is judged: lines written with a wrong auth line (more guesses, the right token) are not acted on', async (t) => {
    // A backend must not be able to try many tokens on one connection, nor be admitted by a later line.
    const broker = await brokerFor(t, { backendToken: TOKEN, queueSize: 100 });
    // Events wait in the queue while no backend is connected; a backend admitted by mistake would take them.
    const first = await backendFor(t, broker.tcpPort, { accept: true });
    first.send(AUTH);
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the first backend is admitted');
    const client = await clientFor(t, broker.url('/room?client_id=alice'));
    await first.next('new_connection');
    first.kill();
    await waitUntil(() => broker.broker.stats.backends.connected === 0, 'the first backend is gone');
    for (const m of ['q1', 'q2', 'q3']) client.ws.send(m);
    await waitUntil(() => broker.broker.stats.queue.depth === 3, 'three events are queued');

    const guesser = await backendFor(t, broker.tcpPort);
    const guesses = ['a', 'b', 'c', TOKEN].map((token, i) => JSON.stringify({ request_id: `g${i}`, action: 'auth', params: { token } }) + '\n');
    guesser.sendRaw(guesses.join(''));
    await guesser.closed;
    const received = everything(guesser);
    assert.deepEqual(
      received.map((l) => [l.action, l.params.error]),
      [['error', 'authentication failed: invalid token']],
      'one error for the first line, and nothing else (no further verdicts, no queued events)',
    );
    assert.equal(broker.broker.stats.backends.connected, 0);
    assert.equal(broker.broker.stats.queue.depth, 3, 'the queued events are still queued (not handed to the expelled link)');
    assert.equal(broker.broker.stats.errors.auth_failed, 1, 'one authentication failure counted');

    const next = await backendFor(t, broker.tcpPort);
    next.send(AUTH);
    for (const m of ['q1', 'q2', 'q3']) assert.equal((await next.next('new_message')).params.message, m);
  });

  test('a backend that sends nothing is told why and disconnected after --backend-auth-timeout', async (t) => {
    const BACKEND_AUTH_TIMEOUT_MS = 300;
    const broker = await brokerFor(t, { backendToken: TOKEN, backendAuthTimeout: BACKEND_AUTH_TIMEOUT_MS });
    const startedAt = Date.now();
    const silent = await backendFor(t, broker.tcpPort);
    const error = await silent.next('error', BACKEND_AUTH_TIMEOUT_MS + 3000);
    await silent.closed;
    const elapsed = Date.now() - startedAt;
    assert.match(error.params.error, /^authentication failed: no auth line within \d+ ms$/);
    assert.ok(elapsed >= BACKEND_AUTH_TIMEOUT_MS - 50, `disconnected after ${elapsed} ms, before the timeout`);
    assert.ok(elapsed < BACKEND_AUTH_TIMEOUT_MS + 2000, `disconnected only after ${elapsed} ms`);
    assert.deepEqual(everything(silent), [], 'nothing but the error line');
  });

  test('no event reaches an unauthenticated backend: connection requests, client events and heartbeats all go to the authenticated one', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN, heartbeatInterval: 20 });
    // Connected first, so that a balancer that (wrongly) counted it would pick it first; it answers
    // nothing, so that every line it gets stays recorded.
    const unauthenticated = await backendFor(t, broker.tcpPort);
    const authed = await backendFor(t, broker.tcpPort, { accept: true });
    authed.send(AUTH);
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the authenticated backend is admitted');
    for (let i = 0; i < 4; i++) {
      const client = await openClient(broker.url(`/room?client_id=c${i}`));
      await authed.next('new_connection', 5000, (l) => l.params.context.client_id === `c${i}`);
      client.ws.send(`m${i}`);
      assert.equal((await authed.next('new_message')).params.message, `m${i}`);
      await client.close();
      await authed.next('disconnected', 5000, (l) => l.params.context.client_id === `c${i}`);
    }
    await authed.next('heartbeat');
    await authed.next('heartbeat');
    assert.equal(broker.broker.stats.messagesOut.connection_request, 4);

    // Now it fails (its first line is not auth): the error is the only line it ever got.
    unauthenticated.send({ request_id: 'x', action: 'broadcast', params: { message: 'hi' } });
    await unauthenticated.closed;
    const lines = everything(unauthenticated);
    assert.deepEqual(
      lines.map((l) => l.action),
      ['error'],
      `the unauthenticated backend got ${JSON.stringify(lines)}`,
    );
  });

  test('the SDK with `token` works end to end; with a wrong token it is told why', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    const sdk = new StrandsBackend({ port: broker.tcpPort, token: TOKEN, reconnect: false });
    t.after(() => sdk.close());
    sdk.onConnectionRequest((req) => ({ accepted: true, client_id: req.queryParam('client_id') ?? 'anon', metadata: { via: 'sdk' } }));
    sdk.onMessage((message, ctx) => sdk.sendToConnection(ctx.client_id, `echo:${message}`));
    await sdk.connect();
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the SDK backend is admitted');
    const client = await clientFor(t, broker.url('/room?client_id=bob'));
    client.ws.send('hi');
    assert.equal(await client.nextMessage(), 'echo:hi');

    const wrong = new StrandsBackend({ port: broker.tcpPort, token: 'nope', reconnect: false });
    t.after(() => wrong.close());
    const errors: string[] = [];
    wrong.onError((error) => errors.push(error));
    const disconnected = once(wrong, 'disconnect');
    await wrong.connect();
    await disconnected;
    assert.deepEqual(errors, ['authentication failed: invalid token']);
    assert.equal(broker.broker.stats.backends.connected, 1);
  });
});

describe('TLS', () => {
  let tls: TlsFixture;
  before(async () => {
    tls = await makeSelfSignedCert();
  });
  after(() => tls?.remove());

  test('wss: a client that trusts the certificate connects and gets its echo', async (t) => {
    const broker = await brokerFor(t, { tlsCert: tls.certFile, tlsKey: tls.keyFile });
    echoWith(await backendFor(t, broker.tcpPort, { accept: true }));
    const url = `wss://127.0.0.1:${broker.wsPort}/secure?client_id=tls-1`;
    const client = await openClient(url, { ca: tls.cert });
    t.after(() => client.ws.terminate());
    client.ws.send('over tls');
    assert.equal(await client.nextMessage(), 'echo:over tls');
    await client.close();

    const lax = await openClient(`wss://127.0.0.1:${broker.wsPort}/secure?client_id=tls-2`, { rejectUnauthorized: false });
    lax.ws.send('lax');
    assert.equal(await lax.nextMessage(), 'echo:lax');
    await lax.close();

    // The certificate really is ours: without trusting it, verification fails.
    await assert.rejects(openClient(`wss://127.0.0.1:${broker.wsPort}/`, {}), /self[- ]signed/i);
    // And the port speaks only TLS.
    await assert.rejects(openClient(`ws://127.0.0.1:${broker.wsPort}/`));
  });

  test('backend TLS: the SDK with `tls` connects and handles a client', async (t) => {
    const broker = await brokerFor(t, { backendTlsCert: tls.certFile, backendTlsKey: tls.keyFile });
    const sdk = new StrandsBackend({ port: broker.tcpPort, tls: { ca: tls.cert, servername: 'localhost' }, reconnect: false });
    t.after(() => sdk.close());
    sdk.onConnectionRequest((req) => ({ accepted: true, client_id: req.queryParam('client_id') ?? 'anon' }));
    const opened: string[] = [];
    sdk.onNewConnection((ctx) => opened.push(ctx.client_id));
    sdk.onMessage((message, ctx) => sdk.sendToConnection(ctx.client_id, `echo:${message}`));
    await sdk.connect();
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the TLS backend is in the pool');
    const client = await clientFor(t, broker.url('/room?client_id=carol'));
    client.ws.send('secret');
    assert.equal(await client.nextMessage(), 'echo:secret');
    assert.deepEqual(opened, ['carol']);

    const lax = new StrandsBackend({ port: broker.tcpPort, tls: { rejectUnauthorized: false }, reconnect: false });
    t.after(() => lax.close());
    await lax.connect();
    await waitUntil(() => broker.broker.stats.backends.connected === 2, 'the second TLS backend is in the pool');
  });

  test('a plain TCP backend on the TLS backend port never becomes a backend: clients get 503', async (t) => {
    const broker = await brokerFor(t, { backendTlsCert: tls.certFile, backendTlsKey: tls.keyFile });
    const plain = connect(broker.tcpPort, '127.0.0.1');
    t.after(() => plain.destroy());
    await once(plain, 'connect');
    const closed = once(plain, 'close');
    plain.on('error', () => undefined);
    plain.resume();
    assert.equal(await upgradeStatus(broker.url('/')), 503, 'while it is connected and silent');
    plain.write(JSON.stringify({ request_id: 'p', action: 'broadcast', params: { message: 'x' } }) + '\n');
    await closed;
    assert.equal(broker.broker.stats.backends.connected, 0);
    assert.equal(await upgradeStatus(broker.url('/')), 503, 'after it was dropped');
  });
});

/** Makes a raw backend echo every new_message back to its sender as `echo:<message>`. */
function echoWith(backend: RawBackend): void {
  // Added after RawBackend's own 'data' listener, so each chunk's lines are already queued.
  backend.socket.on('data', () => {
    for (const line of takeAll(backend, (l) => l.action === 'new_message')) {
      backend.send({ request_id: 'e', action: 'message_to_connection', params: { conn_id: line.params.context.client_id, message: `echo:${line.params.message}` } });
    }
  });
}

describe('--allowed-origins', () => {
  test('a listed Origin connects; another Origin or none gets 403 and never reaches a backend', async (t) => {
    const broker = await brokerFor(t, { allowedOrigins: ['https://good.example'] });
    const requests: Line[] = [];
    await backendFor(t, broker.tcpPort, {
      accept: (line) => {
        requests.push(line);
        return { accepted: true, client_id: clientIdFromQuery(line) };
      },
    });
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');

    assert.equal(await upgradeStatus(broker.url('/?client_id=evil'), { headers: { Origin: 'https://evil.example' } }), 403);
    assert.equal(await upgradeStatus(broker.url('/?client_id=lookalike'), { headers: { Origin: 'https://good.example.evil.example' } }), 403);
    assert.equal(await upgradeStatus(broker.url('/?client_id=none')), 403, 'no Origin header (ws sends none unless told)');
    const bare = await rawUpgrade(broker.wsPort, '/?client_id=raw');
    bare.socket.destroy();
    assert.equal(bare.status, 403, 'a hand-written upgrade without Origin');

    const good = await clientFor(t, broker.url('/?client_id=good'), { Origin: 'https://good.example' });
    assert.equal(good.ws.readyState, good.ws.OPEN);
    assert.deepEqual(
      requests.map((r) => [clientIdFromQuery(r), r.params.headers.Origin]),
      [['good', ['https://good.example']]],
      'only the allowed origin reached the backend',
    );
    assert.equal(broker.broker.stats.connections.refused[403], 4);
  });
});

describe('connection limits', () => {
  test('--max-connections 2: a third concurrent connection gets 503; after one closes a new one connects', async (t) => {
    const broker = await brokerFor(t, { maxConnections: 2 });
    const backend = await backendFor(t, broker.tcpPort, { accept: true });
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');
    const first = await clientFor(t, broker.url('/?client_id=one'));
    await clientFor(t, broker.url('/?client_id=two'));
    assert.equal(await upgradeStatus(broker.url('/?client_id=three')), 503);
    assert.equal(await upgradeStatus(broker.url('/?client_id=three-again')), 503);
    await first.close();
    await backend.next('disconnected', 5000, (l) => l.params.context.client_id === 'one');
    const fourth = await clientFor(t, broker.url('/?client_id=four'));
    await backend.next('new_connection', 5000, (l) => l.params.context.client_id === 'four');
    assert.equal(fourth.ws.readyState, fourth.ws.OPEN);
    assert.equal(await upgradeStatus(broker.url('/?client_id=five')), 503);
    assert.equal(broker.broker.stats.connections.refused[503], 3);
  });

  test('--max-connections-per-ip 1: a second connection from 127.0.0.1 gets 429 with Retry-After; 127.0.0.2 still connects', async (t) => {
    const broker = await brokerFor(t, { maxConnectionsPerIp: 1, host: '0.0.0.0' });
    const backend = await backendFor(t, broker.tcpPort, { accept: true });
    await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the backend is in the pool');
    const url = (id: string): string => `ws://127.0.0.1:${broker.wsPort}/?client_id=${id}`;
    const first = await openClient(url('a1'), { localAddress: '127.0.0.1' });
    t.after(() => first.ws.terminate());
    const second = await rawUpgrade(broker.wsPort, '/?client_id=a2');
    second.socket.destroy();
    assert.equal(second.status, 429);
    assert.equal(second.headers['retry-after'], '1');
    const other = await openClient(url('b1'), { localAddress: '127.0.0.2' });
    t.after(() => other.ws.terminate());
    const opened = await backend.next('new_connection', 5000, (l) => l.params.context.client_id === 'b1');
    assert.equal(opened.params.context.client_id, 'b1');
    assert.equal(await upgradeStatus(url('b2'), { localAddress: '127.0.0.2' }), 429);

    // The slot comes back when the first one closes.
    await first.close();
    await backend.next('disconnected', 5000, (l) => l.params.context.client_id === 'a1');
    const again = await openClient(url('a3'), { localAddress: '127.0.0.1' });
    t.after(() => again.ws.terminate());
    assert.equal(broker.broker.stats.connections.refused[429], 2);
  });
});
