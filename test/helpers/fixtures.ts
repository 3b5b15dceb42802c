import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { BrokerDeps } from '../../src/broker';
import type { BrokerConfig } from '../../src/config';
import type { BackendView } from '../../src/stats';
import { startBroker, type TestBroker } from './broker';
import { RawBackend, type Line } from './raw-backend';
import { openClient, type TestClient } from './ws-client';
import { pyAccept } from './python-json';

/** A UUID version 4 (RFC 4122 variant), as Python's uuid4() and Node's randomUUID() make them. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type AcceptOption = Parameters<typeof RawBackend.connect>[1];

/** A broker stopped when the test ends. */
export async function brokerFor(t: TestContext, overrides: Partial<BrokerConfig> = {}, deps: BrokerDeps = {}): Promise<TestBroker> {
  const broker = await startBroker(overrides, deps);
  t.after(() => broker.stop());
  return broker;
}

/** A raw backend destroyed when the test ends (if still open). */
export async function backendFor(t: TestContext, port: number, options: AcceptOption = {}): Promise<RawBackend> {
  const backend = await RawBackend.connect(port, options);
  t.after(() => backend.kill());
  return backend;
}

/** A WebSocket client terminated when the test ends (if still open). */
export async function clientFor(t: TestContext, url: string, headers: Record<string, string> = {}): Promise<TestClient> {
  const client = await openClient(url, { headers });
  t.after(() => client.ws.terminate());
  return client;
}

/**
 * Opens a client with `?client_id=<id>` through a backend made with `accept: true`
 * (so the id is its client_id and `path` its room), and waits for its new_connection.
 */
export async function joinedClient(t: TestContext, broker: TestBroker, backend: RawBackend, clientId: string, path = '/room'): Promise<{ client: TestClient; opened: Line }> {
  const client = await clientFor(t, broker.url(`${path}?client_id=${encodeURIComponent(clientId)}`));
  const opened = await backend.next('new_connection', 5000, (l) => l.params.context?.client_id === clientId);
  return { client, opened };
}

/** Opens a client with `?client_id=<id>` and waits for its new_connection on any of `backends` (made with `accept: true`); returns the backend that got it. */
export async function joinAny(t: TestContext, broker: TestBroker, backends: RawBackend[], clientId: string, path = '/room'): Promise<{ client: TestClient; owner: RawBackend }> {
  const client = await clientFor(t, broker.url(`${path}?client_id=${encodeURIComponent(clientId)}`));
  const [, owner] = await takeOne(backends, (l) => l.action === 'new_connection' && l.params.context?.client_id === clientId);
  return { client, owner };
}

/** The broker's view of its link to `backend` (matched by the backend's local port). */
export function linkOf(broker: TestBroker, backend: RawBackend): BackendView {
  const link = broker.broker.stats.backends.links.find((l) => l.remote.endsWith(`:${backend.socket.localPort}`));
  assert.ok(link, 'no link for this backend in the pool');
  return link;
}

/** For a backend the broker may reset (when it drops it, or closes it with bytes unread): its socket error is expected. */
export function tolerateReset(backend: RawBackend): void {
  backend.socket.on('error', () => undefined);
  // RawBackend.closed is events.once(socket, 'close'), which rejects on 'error'.
  backend.closed.catch(() => undefined);
}

/**
 * Waits until `condition()` holds, re-checking every few milliseconds: for
 * broker state that no event announces (a backend's removal from the pool, the
 * queue's length). Not a fixed delay: it returns as soon as the state is reached.
 */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * Waits until the backends together have received at least `count` lines
 * matching `accept` (not yet taken), without taking them. Event-driven: re-checks
 * after every chunk any of them reads.
 */
export function waitAcross(backends: RawBackend[], count: number, accept: (line: Line) => boolean, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const total = (): number => backends.reduce((n, b) => n + b.lines.pending.filter(accept).length, 0);
    const check = (): void => {
      if (total() < count) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} lines across ${backends.length} backends (got ${total()})`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      for (const b of backends) b.socket.off('data', check);
    };
    // Added after RawBackend's own listener, so the chunk's lines are already queued when this runs.
    for (const b of backends) b.socket.on('data', check);
    check();
  });
}

/** waitAcross, then takes every matching line: one array per backend, each in arrival order. */
export async function takeAcross(backends: RawBackend[], count: number, accept: (line: Line) => boolean, timeoutMs = 5000): Promise<Line[][]> {
  await waitAcross(backends, count, accept, timeoutMs);
  return backends.map((b) => takeAll(b, accept));
}

/** Removes and returns every line `backend` received and nobody took yet that matches `accept`. */
export function takeAll(backend: RawBackend, accept: (line: Line) => boolean = () => true): Line[] {
  const lines = backend.lines.pending.filter(accept);
  // next() takes a matching item synchronously when one is queued.
  for (const line of lines) void backend.lines.next((l) => l === line);
  return lines;
}

/** The next line of any action (the strict order a backend receives them in). */
export function nextLine(backend: RawBackend, timeoutMs = 5000): Promise<Line> {
  return backend.lines.next(() => true, timeoutMs, 'any line');
}

interface Joined {
  client: TestClient;
  /** The connection_request, and the backend that got (and answered) it. */
  request: Line;
  requestBackend: RawBackend;
  /** The new_connection, and the backend it went to. */
  opened: Line;
  openedBackend: RawBackend;
}

/**
 * Connects a client the way a Python backend admits it: waits for the
 * connection_request on whichever of `backends` gets it, answers it with the
 * Python client's exact line (`pyAccept`, client_id `clientId`, room = url unless
 * `overrides` says otherwise), and waits for the upgrade and the new_connection.
 */
export async function pyJoin(t: TestContext, broker: TestBroker, backends: RawBackend[], clientId: string, path = '/room', overrides: Record<string, unknown> = {}): Promise<Joined> {
  const opening = clientFor(t, broker.url(path));
  opening.catch(() => undefined);
  const [request, requestBackend] = await takeOne(backends, (l) => l.action === 'connection_request');
  pyAccept(requestBackend, request, { client_id: clientId, ...overrides });
  const client = await opening;
  const [opened, openedBackend] = await takeOne(backends, (l) => l.action === 'new_connection' && l.params.context?.client_id === clientId);
  return { client, request, requestBackend, opened, openedBackend };
}

/** The first line matching `accept` on any of `backends`, with the backend it came to (other matches stay queued). */
export async function takeOne(backends: RawBackend[], accept: (line: Line) => boolean, timeoutMs = 5000): Promise<[Line, RawBackend]> {
  await waitAcross(backends, 1, accept, timeoutMs);
  const backend = backends.find((b) => b.lines.pending.some(accept)) as RawBackend;
  return [await backend.lines.next(accept), backend];
}
