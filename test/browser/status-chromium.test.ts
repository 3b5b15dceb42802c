/**
 * The broker's status page in headless Chromium: after real traffic, every
 * figure it shows is what /stats.json and /metrics say; room names only with
 * --status-page-rooms; the cluster's nodes, from the directory.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { createLogger } from '../../src/logger';
import { MetricsServer } from '../../src/metrics/metrics-server';
import type { StatusSnapshot } from '../../src/metrics/status-page';
import { collectErrors, launchChromium } from '../helpers/browser';
import { backendFor, brokerFor, clientFor, waitUntil } from '../helpers/fixtures';
import { scrape, type Sample } from '../helpers/metrics-probe';
import { readStats, statsWhen } from '../helpers/status';
import { openClient } from '../helpers/ws-client';
import { echoBroker } from './fixtures';
import { spawnStrands } from '../helpers/spawn-broker';
import { MemoryBus } from '../helpers/memory-bus';

const PHONE = { viewport: { width: 390, height: 760 } };
const TRAFFIC_MS = 5000;
const PER_CLIENT_PER_SECOND = 20;

async function statusPage(t: TestContext, browser: Browser, port: number): Promise<{ page: Page; errors: string[] }> {
  const page = await (await browser.newContext(PHONE)).newPage();
  t.after(() => page.context().close());
  const errors = collectErrors(page);
  await page.goto(`http://127.0.0.1:${port}/status`);
  return { page, errors };
}

/**
 * The traffic generator: each client sends PER_CLIENT_PER_SECOND messages a
 * second for TRAFFIC_MS, through the echo backend; resolves with the number
 * sent once every one of them has come back.
 */
async function traffic(t: TestContext, urls: string[]): Promise<number> {
  const counts = await Promise.all(
    urls.map(async (url) => {
      const client = await openClient(url);
      t.after(() => client.ws.terminate());
      const end = Date.now() + TRAFFIC_MS;
      let sent = 0;
      while (Date.now() < end) {
        client.ws.send(`message ${sent++}`);
        await new Promise((resolve) => setTimeout(resolve, 1000 / PER_CLIENT_PER_SECOND));
      }
      for (let i = 0; i < sent; i++) await client.nextMessage(10_000);
      return sent;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** Waits until the page shows a read of /stats.json made after `time` (its body's data-time). */
async function shows(page: Page, time: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const shown = Number(await page.getAttribute('body', 'data-time'));
    if (shown > time) return;
    if (Date.now() > deadline) assert.fail(`the page did not refresh after ${time}: it shows the read of ${shown}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The text of each cell of each row `rows` selects. */
function cells(page: Page, rows: string): Promise<(string | null)[][]> {
  return page.$$eval(rows, (trs) => trs.map((tr) => Array.from(tr.children as ArrayLike<{ textContent: string | null }>, (td) => td.textContent)));
}

/** A figure as the page shows it, read back: "1,234" or "64.0 MiB". */
function shown(text: string): number {
  const match = /^([\d,.]+)(?: (B|KiB|MiB|GiB|TiB))?$/.exec(text);
  assert.ok(match, `not a figure: ${JSON.stringify(text)}`);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  return Number((match[1] as string).replace(/,/g, '')) * 1024 ** Math.max(0, units.indexOf(match[2] ?? 'B'));
}

function valueAt(snapshot: StatusSnapshot, path: string): number {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown>)[key], snapshot) as number;
}

/** The sum of a metric's series, over every label. */
function total(samples: Sample[], name: string): number {
  return samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);
}

/** Which metric each figure of the page is (summed over its labels). */
const METRIC_OF: Record<string, string> = {
  'connections.open': 'strands_connections_open',
  'connections.opened': 'strands_connections_opened_total',
  'connections.waiting': 'strands_upgrades_waiting',
  'connections.refused': 'strands_connections_refused_total',
  'messages.in': 'strands_messages_in_total',
  'messages.out': 'strands_messages_out_total',
  'rooms.count': 'strands_rooms',
  'backends.connected': 'strands_backends_connected',
  'backends.authenticating': 'strands_backends_authenticating',
  'backends.dropped': 'strands_backends_dropped_total',
  'queue.depth': 'strands_queue_depth',
  'queue.bytes': 'strands_queue_bytes',
  'queue.dropped': 'strands_queue_dropped_total',
};

/** Every figure the page shows is /stats.json's, and the same count as its Prometheus metric. */
async function figuresAgree(page: Page, json: StatusSnapshot, metrics: Sample[]): Promise<void> {
  const figures = await page.$$eval('[data-stat]', (elements) => elements.map((e) => [e.getAttribute('data-stat') as string, e.textContent ?? '']));
  assert.ok(figures.length >= 15, `${figures.length} figures on the page`);
  for (const [stat, text] of figures) {
    const expected = valueAt(json, stat as string);
    const read = shown(text as string);
    // Bytes are shown to a tenth of their unit.
    if (/^\d[\d,]*$/.test(text as string)) assert.equal(read, expected, `${stat}: the page shows ${text}`);
    else assert.ok(Math.abs(read - expected) <= 0.05 * expected, `${stat}: the page shows ${text}, /stats.json ${expected}`);
    const metric = METRIC_OF[stat as string];
    if (metric !== undefined) assert.equal(expected, total(metrics, metric), `${stat} and ${metric}`);
  }
  assert.ok(Object.keys(METRIC_OF).every((stat) => figures.some(([s]) => s === stat)), 'every figure with a metric is on the page');
}

test('after 5 s of real traffic, every figure of the status page is what /stats.json and /metrics say', async (t) => {
  const broker = await echoBroker(t, { metricsPort: 0, statusPage: true, statusPageRooms: true, heartbeatInterval: 0, queueSize: 500 });
  const port = broker.broker.metricsPort;
  // One error of a known kind: a line that is not JSON, from a backend that leaves before the traffic.
  const careless = await backendFor(t, broker.tcpPort);
  careless.sendRaw('not json\n');
  await careless.next('error');
  await careless.close();
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'only the echo backend is left');

  const browser = await launchChromium(t);
  const { page, errors } = await statusPage(t, browser, port);
  const urls = ['/room-a?client_id=a1', '/room-a?client_id=a2', '/room-b?client_id=b1', '/room-b?client_id=b2'].map((path) => broker.url(path));
  const sent = await traffic(t, urls);
  const settled = Date.now();
  // A rate sample whose whole interval came after the last message (so its rate is 0), then a page read after it.
  const last = await statsWhen(port, (s) => s.rates.until > settled, 'a rate sample after the traffic');
  const quiet = await statsWhen(port, (s) => s.rates.until > last.rates.until, 'the sample after that');
  await shows(page, quiet.time);

  const json = await readStats(port);
  const metrics = await scrape(port);
  // The traffic, counted independently: each message in, and its echo (message_to_connection) in; each message out to the backend,
  // with the four connection requests, their four answers and the four new connections.
  assert.equal(json.messages.in, 2 * sent + 4);
  assert.equal(json.messages.out, sent + 8);
  assert.ok(sent >= 0.5 * urls.length * PER_CLIENT_PER_SECOND * (TRAFFIC_MS / 1000), `${sent} messages sent`);

  await figuresAgree(page, json, metrics);

  const peakIn = Math.max(...json.rates.in);
  const expectedRate = 2 * urls.length * PER_CLIENT_PER_SECOND;
  assert.ok(peakIn >= 0.5 * expectedRate && peakIn <= 2 * expectedRate, `peak ${peakIn}/s in, for about ${expectedRate}/s sent and echoed`);
  const rate = (direction: string, at: string): Promise<number> => page.textContent(`[data-rate="${direction}"][data-at="${at}"]`).then((text) => shown(text ?? ''));
  assert.equal(await rate('in', 'peak'), peakIn);
  assert.equal(await rate('out', 'peak'), Math.max(...json.rates.out));
  assert.equal(await rate('in', 'now'), 0, 'the traffic is over');
  assert.equal(json.rates.in.at(-1), 0);
  const points = ((await page.getAttribute('#chart-in polyline', 'points')) ?? '').trim().split(' ');
  assert.ok(points.length >= TRAFFIC_MS / 1000 && points.length <= json.rates.in.length, `${points.length} points for ${json.rates.in.length} samples`);

  const rooms = await page.$$eval('#largest-rooms li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(json.rooms.largest, [
    { room: '/room-a', members: 2 },
    { room: '/room-b', members: 2 },
  ]);
  assert.deepEqual(rooms, ['/room-a · 2 members', '/room-b · 2 members']);
  assert.equal(await page.isHidden('#rooms-hidden'), true);

  const backends = await cells(page, '#backend-links tr');
  assert.deepEqual(
    backends,
    json.backends.links.map((link) => [link.remote, 'ready', '0 B', '0']),
  );
  assert.equal(json.backends.links.length, 1);

  const errorRows = await cells(page, '#errors tr');
  assert.deepEqual(errorRows, [['invalid_json', '1']]);
  for (const [kind, count] of Object.entries(json.errors)) assert.equal(count, metrics.find((s) => s.name === 'strands_errors_total' && s.labels.kind === kind)?.value, kind);

  assert.equal(await page.textContent('#single-node'), 'single node');
  assert.equal(await page.isHidden('#cluster-nodes'), true);
  assert.equal(await page.textContent('#state'), 'live');
  assert.ok(await page.locator('html').evaluate((html) => html.scrollWidth <= html.clientWidth), 'no sideways scrolling on a phone');
  assert.deepEqual(errors, []);
});

test('after 5 s of `strands bench` traffic, every figure of the status page is what /stats.json and /metrics say', async (t) => {
  const broker = await echoBroker(t, { metricsPort: 0, statusPage: true, heartbeatInterval: 0 });
  const port = broker.broker.metricsPort;
  const browser = await launchChromium(t);
  const { page, errors } = await statusPage(t, browser, port);
  const bench = spawnStrands(t, ['bench', 'throughput', '--url', broker.url('/ws/bench'), '--tcp', `127.0.0.1:${broker.tcpPort}`, '--clients', '10', '--rate', '400', '--duration', '5', '--warmup', '0', '--drain', '1']);
  assert.equal((await bench.exited).code, 0, `strands bench failed: ${bench.stderr()}`);
  // The bench's own backend has gone: the read after that is the one to compare.
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the bench backend left');
  const after = await statsWhen(port, (s) => s.backends.connected === 1 && s.connections.open === 0, 'a read after the bench');
  await shows(page, after.time);
  const json = await readStats(port);
  const metrics = await scrape(port);
  assert.ok(json.messages.in >= 2 * 400 * 5 * 0.5, `${json.messages.in} messages in after the bench`);
  assert.ok(Math.max(...json.rates.in) > 0);
  await figuresAgree(page, json, metrics);
  assert.deepEqual(errors, []);
});

test('without --status-page-rooms the page names no room, and says how to list them', async (t) => {
  const broker = await brokerFor(t, { metricsPort: 0, statusPage: true });
  const backend = await backendFor(t, broker.tcpPort, { accept: true });
  await clientFor(t, broker.url('/a-secret-room?client_id=x'));
  await backend.next('new_connection');
  const browser = await launchChromium(t);
  const { page, errors } = await statusPage(t, browser, broker.broker.metricsPort);
  await shows(page, 0);
  assert.equal(await page.textContent('[data-stat="rooms.count"]'), '1');
  assert.equal(await page.isVisible('#rooms-hidden'), true);
  assert.match((await page.textContent('#rooms-hidden')) ?? '', /--status-page-rooms/);
  assert.equal(await page.$$eval('#largest-rooms li', (items) => items.length), 0);
  assert.doesNotMatch(await page.content(), /a-secret-room/);
  assert.deepEqual(errors, []);
});

test('in a cluster, /stats.json and the page list the nodes the directory knows; and the page says so when the broker stops answering', async (t) => {
  const bus = new MemoryBus();
  // Heartbeats of 500 ms: a node counts as gone after three missed, which Chromium starting must not cause.
  const cluster = (id: string) => ({ cluster: ['nats://in-memory'], nodeId: id, clusterHeartbeat: 500, heartbeatInterval: 0 });
  const a = await brokerFor(t, cluster('node-a'), { bus: (nodeId) => bus.transport(nodeId) });
  const b = await brokerFor(t, cluster('node-b'), { bus: (nodeId) => bus.transport(nodeId) });
  await backendFor(t, b.tcpPort, { accept: true });
  await waitUntil(() => a.broker.stats.cluster?.nodes.some((n) => n.id === 'node-b' && n.backends === 1) === true, 'node a hears of node b and its backend');
  const server = new MetricsServer(a.broker.stats, '127.0.0.1', 0, createLogger('silent'), { rooms: false, queueLimits: { events: 1, bytes: 1024 } });
  await server.start();
  t.after(() => server.stop());
  const nodes = (await readStats(server.listeningPort)).cluster?.nodes ?? [];
  assert.deepEqual(nodes.map((n) => [n.id, n.backends]), [['node-a', 0], ['node-b', 1]]);
  assert.ok(nodes.every((n) => n.lastSeenMs >= 0 && n.lastSeenMs < 5000), JSON.stringify(nodes));
  const browser = await launchChromium(t);
  const { page, errors } = await statusPage(t, browser, server.listeningPort);
  await page.waitForSelector('#cluster-nodes tbody tr');
  assert.equal(await page.isHidden('#single-node'), true);
  const rows = await cells(page, '#cluster-nodes tbody tr');
  assert.deepEqual(rows.map((r) => r.slice(0, 3)), [['node-a', '0.1.0', '0'], ['node-b', '0.1.0', '1']]);
  assert.deepEqual(errors, []);

  await server.stop();
  await page.waitForSelector('#state.bad', { timeout: 10_000 });
  assert.equal(await page.textContent('#state'), 'unreachable: retrying');
});
