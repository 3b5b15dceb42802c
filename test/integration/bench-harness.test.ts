import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DEFAULTS, formatText, runOn, runScenario, startBrokerProcess, writeOutputs, type BenchOptions, type BenchResult } from '../../src/bench';
import { PayloadWriter, readSendTime } from '../../src/bench/payload';
import { startBroker } from '../helpers/broker';
import { RawBackend } from '../helpers/raw-backend';
import { openClient } from '../helpers/ws-client';

/** Short runs: enough traffic to exercise every part of the harness, not to measure anything. */
const SHORT: Partial<BenchOptions> = { duration: 1.5, warmup: 0.5, drain: 5 };
const DEFAULT_PATH = new URL(DEFAULTS.url).pathname;

test('bench harness against a broker process and the baseline', async (t) => {
  const broker = await startBrokerProcess();
  t.after(() => broker.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'strands-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const target: Partial<BenchOptions> = { url: broker.url(DEFAULT_PATH), tcp: { host: '127.0.0.1', port: broker.tcpPort! }, targetPid: broker.pid };

  await t.test("pingpong with an ancestor's pid (npm's, under npx): the broker below it is measured, and the outputs are written", async () => {
    // This test process started the broker, as npm does under `npx strands`.
    const result = await runScenario({ scenario: 'pingpong', clients: 20, ...SHORT, ...target, targetPid: process.pid });
    assertClean(result);
    assert.equal(result.results.deliveries, result.results.messages);
    assert.equal(result.target.pid, broker.pid, 'the process listening on the URL port');
    assert.match(result.target.pidNote ?? '', new RegExp(`^--target-pid ${process.pid} \\(.*\\) does not listen on port ${broker.wsPort}: measuring its descendant ${broker.pid} `));
    assert.match(formatText(result), /note: broker run: --target-pid/);
    assert.ok(result.results.cpuUsPerOp !== null && result.results.cpuUsPerOp > 0, "the broker's CPU, not the test process's idle ancestor's");
    assert.equal(result.results.rssBytesPerConn, null, 'no RSS per connection under traffic');
    assert.equal(typeof result.results.rssGrowthBytes, 'number');
    assertOutputs(result, dir, 'pingpong');
  });

  await t.test('--target-pid of a process that is not the server: refused, naming the process and the port', async (t) => {
    const idle = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.after(() => idle.kill());
    await once(idle, 'spawn');
    await assert.rejects(
      runScenario({ scenario: 'pingpong', clients: 5, ...SHORT, ...target, targetPid: idle.pid! }),
      new RegExp(`^Error: --target-pid ${idle.pid} \\(sleep\\) is not the server: it does not listen on port ${broker.wsPort} and it has no child process`),
    );
  });

  await t.test('connect: RSS per idle connection', async () => {
    const result = await runScenario({ scenario: 'connect', connections: 40, concurrency: 10, duration: 0.2, ...target });
    assert.equal(result.verdict, 'OK');
    assert.equal(result.results.connections, 40);
    assert.equal(result.results.rssBytesPerConn, Math.round(result.results.rssGrowthBytes! / 40));
  });

  await t.test('fanout: each publish reaches every member of the room', async () => {
    const result = await runScenario({ scenario: 'fanout', roomSize: 50, rate: 50, ...SHORT, ...target });
    assertClean(result);
    assert.equal(result.results.deliveries, result.results.messages * 50);
    assertOutputs(result, dir, 'fanout');
  });

  await t.test('fanout against the baseline server', async () => {
    const result = await runOn({ kind: 'baseline' }, { scenario: 'fanout', roomSize: 50, rate: 50, ...SHORT });
    assertClean(result);
    assert.equal(result.target.kind, 'baseline');
    assert.equal(result.results.deliveries, result.results.messages * 50);
  });
});

test("the default URL path is under /ws/ (all the Go broker serves), and strands accepts any path", async (t) => {
  assert.match(DEFAULT_PATH, /^\/ws\/./);
  const broker = await startBroker();
  t.after(() => broker.stop());
  const backend = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => backend.kill());
  for (const p of [DEFAULT_PATH, '/', '/bench', '/a/b/c']) {
    const client = await openClient(broker.url(p));
    // RawBackend puts each client in the room named after the url its connection_request carried.
    assert.equal((await backend.next('new_connection')).params.context.room_id, p);
    await client.close();
  }
});

test('bench payloads are exactly --payload bytes and carry their send time', () => {
  const writer = new PayloadWriter(40);
  const long = writer.write(123456789, 1_732_600_000_123_456);
  assert.equal(long.length, 40);
  assert.equal(readSendTime(long), 1_732_600_000_123_456);
  // A shorter header after a longer one leaves no stale digits behind.
  const short = writer.text(7, 42);
  assert.equal(short, '7:42:' + 'x'.repeat(35));
  assert.equal(readSendTime(Buffer.from('no header')), -1);
});

function assertClean(result: BenchResult): void {
  assert.ok(result.results.messages > 0, 'messages were sent');
  assert.ok(result.results.deliveries > 0, 'messages were received');
  assert.equal(result.results.lost, 0, `lost: ${result.verdict}`);
  assert.equal(result.results.errors, 0, `errors: ${result.results.errorSamples.join('; ')}`);
  assert.equal(result.verdict, 'OK');
  assert.ok(result.results.latencyUs.p50 > 0 && result.results.latencyUs.p50 <= result.results.latencyUs.max);
}

function assertOutputs(result: BenchResult, dir: string, name: string): void {
  const json = path.join(dir, `${name}.json`);
  const report = path.join(dir, `${name}.html`);
  writeOutputs(result, { json, report });

  const parsed = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
  assert.equal(parsed.scenario, result.scenario);
  for (const key of ['target', 'config', 'startedAt', 'machine', 'results', 'verdict']) assert.ok(key in parsed, `JSON has ${key}`);
  assert.deepEqual(Object.keys(parsed.machine).sort(), ['cores', 'cpuModel', 'node']);
  for (const key of ['messages', 'deliveries', 'rate', 'latencyUs', 'lost', 'errors', 'cpuUsPerOp', 'rssGrowthBytes', 'rssBytesPerConn', 'perSecond']) {
    assert.ok(key in parsed.results, `JSON results have ${key}`);
  }
  assert.deepEqual(Object.keys(parsed.results.latencyUs).sort(), ['max', 'p50', 'p90', 'p99', 'p999']);
  assert.ok(parsed.results.perSecond.length > 0);

  const html = readFileSync(report, 'utf8');
  assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
  assert.match(html, /<\/html>\n$/);
  assert.equal(html.match(/<svg /g)?.length, 2, 'two inline plots');
  assert.doesNotMatch(html, /\b(src|href)=|https?:\/\/|@import|url\(/, 'nothing is fetched');
  assertBalancedTags(html);
}

/** Every element that is opened is closed, in order (void HTML elements and self-closed SVG ones aside). */
function assertBalancedTags(html: string): void {
  const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);
  const open: string[] = [];
  for (const [, slash, name, selfClosed] of html.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(\/?)>/g)) {
    const tag = name!.toLowerCase();
    if (selfClosed || VOID.has(tag)) continue;
    if (slash) assert.equal(open.pop(), tag, `</${tag}> closes what was opened`);
    else open.push(tag);
  }
  assert.deepEqual(open, [], 'no element is left open');
}
