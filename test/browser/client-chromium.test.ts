import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { AsyncQueue } from '../helpers/async-queue';
import { CLIENT_BUNDLE, openPage, type TestPage } from '../helpers/browser';
import { echo, echoBroker, tinyServer } from './fixtures';

/** An event of the page's client, as the page reports it: binary data as an array of bytes, errors as text. */
type PageEvent = { type: string } & Record<string, unknown>;

/**
 * The page the client tests open: it imports the bundle as a module, and
 * `start(url, options)` makes `client`, whose every event goes to `report`.
 */
const HARNESS = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>strands client</title>
<script type="module">
  import * as bundle from '/strands-client.js';
  const { StrandsClient } = bundle;
  const plain = (type, event) =>
    type === 'message' && typeof event.data !== 'string' ? { type, binary: Array.from(event.data) }
      : type === 'error' ? { type, error: String(event.error) }
      : { type, ...event };
  window.exported = Object.keys(bundle);
  window.start = (url, options) => {
    window.client = new StrandsClient(url, options);
    for (const type of ['open', 'message', 'close', 'reconnecting', 'failed', 'error']) client.on(type, (event) => report(plain(type, event)));
  };
</script>`;

interface Harness extends TestPage {
  events: AsyncQueue<PageEvent>;
  next(type: string, timeoutMs?: number): Promise<PageEvent>;
  /** Evaluates a JavaScript expression in the page. */
  run<T = unknown>(expression: string): Promise<T>;
}

async function openHarness(t: TestContext): Promise<Harness> {
  const events = new AsyncQueue<PageEvent>();
  const opened = await openPage(t, { '/index.html': HARNESS, '/strands-client.js': readFileSync(CLIENT_BUNDLE) }, {
    beforeLoad: (page) => page.exposeFunction('report', (event: PageEvent) => events.push(event)),
  });
  return {
    ...opened,
    events,
    next: (type, timeoutMs = 5000) => events.next((e) => e.type === type, timeoutMs, `a ${type} event in the page`),
    run: <T>(expression: string) => opened.page.evaluate(expression) as Promise<T>,
  };
}

test('the browser helper reports console errors and uncaught exceptions', async (t) => {
  const { errors } = await openPage(t, { '/index.html': '<!doctype html><link rel="icon" href="data:,"><script>console.error("seen"); throw new Error("thrown");</script>' });
  assert.deepEqual(errors, ['seen', 'uncaught: thrown']);
});

test('the client bundle loads in Chromium as an ES module with no console errors', async (t) => {
  const page = await openHarness(t);
  assert.deepEqual(await page.run('exported'), ['StrandsClient']);
  assert.deepEqual(page.errors, []);
});

test('a page connects to a real broker, sends and receives through an echo backend', async (t) => {
  const broker = await echoBroker(t);
  const page = await openHarness(t);
  await page.run(`start(${JSON.stringify(broker.url('/chat'))}, { query: { client_id: 'page' } })`);
  assert.deepEqual(await page.next('open'), { type: 'open', flushed: 0 });
  assert.equal(await page.run(`client.send('hello from chromium ☃')`), true);
  assert.deepEqual(await page.next('message'), { type: 'message', data: 'hello from chromium ☃' });
  await page.run('client.close()');
  assert.deepEqual(await page.next('close'), { type: 'close', code: 1000, reason: '', willReconnect: false });
  assert.deepEqual(page.errors, []);
});

test('a page reconnects by itself after the broker restarts on the same port, and what it sent meanwhile arrives', async (t) => {
  const first = await echoBroker(t);
  const url = first.url('/lobby');
  const page = await openHarness(t);
  await page.run(`start(${JSON.stringify(url)}, { query: { client_id: 'page' }, goingAwayDelayMs: 200, minDelayMs: 20, maxDelayMs: 200, maxAttempts: Infinity })`);
  await page.next('open');
  await page.run(`client.send('before')`);
  assert.equal((await page.next('message')).data, 'before');

  await first.stop();
  assert.deepEqual(await page.next('close'), { type: 'close', code: 1001, reason: 'server going away, please reconnect', willReconnect: true });
  assert.equal(await page.run(`client.send('while away 1')`), true);
  assert.equal(await page.run(`client.send('while away 2')`), true);
  assert.equal(await page.run('client.buffered'), 2);

  await echoBroker(t, { wsPort: first.wsPort });
  assert.deepEqual(await page.next('open', 10_000), { type: 'open', flushed: 2 });
  assert.equal((await page.next('message')).data, 'while away 1');
  assert.equal((await page.next('message')).data, 'while away 2');
  const retry = page.events.pending.find((e) => e.type === 'reconnecting');
  assert.ok(retry, 'a reconnecting event');
  assert.equal(retry.attempt, 1);
  assert.ok(Number(retry.delay) <= 200, `the first retry after 1001 waits at most goingAwayDelayMs: ${String(retry.delay)}`);
  // Chromium logs each refused attempt (connection refused, or 503 while no backend had joined yet); the page saw only a close.
  const refused = new RegExp(`^WebSocket connection to '${url.replace(/[.?]/g, '\\$&')}\\?client_id=page' failed`);
  for (const error of page.errors) assert.match(error, refused);
});

test('in Chromium: binary both ways, and a listener that throws is reported without stopping the client or the other listeners', async (t) => {
  const server = await tinyServer(t, echo);
  const page = await openHarness(t);
  await page.run(`start(${JSON.stringify(server.url('/'))}, {})`);
  await page.next('open');
  await page.run(`client.on('message', (e) => { if (e.data === 'boom') throw new Error('listener threw'); }), window.after = [], client.on('message', (e) => after.push(e.data))`);
  await page.run(`client.send(new Uint8Array([1, 2, 3])), client.send(new Uint8Array([250, 4, 5]).buffer), client.send(new DataView(new Uint8Array([0, 6, 7]).buffer, 1)), client.send('boom'), client.send('after boom')`);
  const received: PageEvent[] = [];
  for (let i = 0; i < 5; i++) received.push(await page.next('message'));
  assert.deepEqual(received, [
    { type: 'message', binary: [1, 2, 3] },
    { type: 'message', binary: [250, 4, 5] },
    { type: 'message', binary: [6, 7] },
    { type: 'message', data: 'boom' },
    { type: 'message', data: 'after boom' },
  ]);
  assert.deepEqual(await page.run('after.filter((d) => typeof d === "string")'), ['boom', 'after boom']);
  assert.deepEqual(page.errors, ['uncaught: listener threw']);
});
