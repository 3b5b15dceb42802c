import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runOn, runScenario, startBrokerProcess, writeOutputs, type BenchOptions, type BenchResult } from '../../src/bench';
import { PayloadWriter, readSendTime } from '../../src/bench/payload';

/** Short runs: enough traffic to exercise every part of the harness, not to measure anything. */
const SHORT: Partial<BenchOptions> = { duration: 1.5, warmup: 0.5, drain: 5 };

test('bench harness against a broker process and the baseline', async (t) => {
  const broker = await startBrokerProcess();
  t.after(() => broker.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'strands-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const target: Partial<BenchOptions> = { url: broker.url('/bench'), tcp: { host: '127.0.0.1', port: broker.tcpPort! }, targetPid: broker.pid };

  await t.test('pingpong: every message comes back, and the outputs are written', async () => {
    const result = await runScenario({ scenario: 'pingpong', clients: 20, ...SHORT, ...target });
    assertClean(result);
    assert.equal(result.results.deliveries, result.results.messages);
    assert.ok(result.results.cpuUsPerOp !== null && result.results.cpuUsPerOp > 0, 'CPU per op is measured with a target pid');
    assert.ok(result.results.rssBytesPerConn !== null);
    assertOutputs(result, dir, 'pingpong');
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
  for (const key of ['messages', 'deliveries', 'rate', 'latencyUs', 'lost', 'errors', 'cpuUsPerOp', 'rssBytesPerConn', 'perSecond']) {
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
