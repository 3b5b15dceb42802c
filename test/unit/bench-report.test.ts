/**
 * What `strands bench` prints and writes, from results built the way a run builds
 * them (buildResult over a measurement), without running any load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatText, renderHtml, resolveOptions, SCENARIO_NAMES, type BenchResult, type ScenarioName } from '../../src/bench';
import { ErrorTally } from '../../src/bench/error-tally';
import { createHistogram } from '../../src/bench/histogram';
import { buildResult, withBaseline, type Measurement } from '../../src/bench/result';
import { SCENARIOS } from '../../src/bench/scenarios';

const WINDOW_S = 10;
const RSS_GROWTH = 6_600_000;

/** A run of `scenario` that moved `perSecond` ops each second, its latencies spread from 40 µs to 12 ms. */
function result(scenario: ScenarioName, perSecond: number, extra: { targetNote?: string } = {}): BenchResult {
  const options = resolveOptions({ scenario, targetPid: 1234 });
  const spec = SCENARIOS[scenario];
  const latency = createHistogram();
  for (let us = 40; us <= 12_000; us += 7) latency.recordValue(us);
  const ops = perSecond * WINDOW_S;
  const connections = spec.clients(options);
  const measurement: Measurement = {
    messages: ops,
    deliveries: ops,
    connections,
    ops,
    windowUs: WINDOW_S * 1e6,
    latency,
    lost: 0,
    errors: new ErrorTally(),
    perSecond: new Array<number>(WINDOW_S).fill(perSecond),
    target: { cpuUs: ops * 5, wallUs: WINDOW_S * 1e6, rssDeltaBytes: RSS_GROWTH },
    harnessCpuUs: { main: 1e6, workers: [4e6] },
  };
  return buildResult(options, spec, 1, '2025-01-01T00:00:00.000Z', measurement, extra.targetNote);
}

function compared(scenario: ScenarioName, perSecond: number): BenchResult {
  const baseline = result(scenario, perSecond);
  return withBaseline(result(scenario, perSecond), { ...baseline, target: { ...baseline.target, kind: 'baseline' } });
}

test('bench reports print µs, never "us"', () => {
  for (const scenario of SCENARIO_NAMES) {
    const run = compared(scenario, 1000);
    const text = formatText(run);
    const html = renderHtml(run);
    assert.match(text, /p99 \(µs\)/);
    assert.match(text, /target CPU \(µs per /);
    assert.match(html, />\d+ µs</, 'latency axis ticks below a millisecond');
    for (const out of [text, html]) assert.doesNotMatch(out, /\bus\b/, `${scenario}: no "us" as a unit`);
  }
});

test('RSS per connection only for connect; elsewhere the growth under load', () => {
  for (const scenario of SCENARIO_NAMES) {
    const run = result(scenario, 1000);
    const text = formatText(run);
    assert.equal(run.results.rssGrowthBytes, RSS_GROWTH);
    if (scenario === 'connect') {
      assert.equal(run.results.rssBytesPerConn, Math.round(RSS_GROWTH / run.results.connections));
      assert.match(text, /^target RSS per idle connection +660 B$/m);
      assert.doesNotMatch(text, /growth/);
    } else {
      assert.equal(run.results.rssBytesPerConn, null, `${scenario}: no figure per connection under traffic`);
      assert.match(text, /^target RSS growth under load +6\.3 MiB$/m);
      assert.doesNotMatch(text, /per (idle )?connection/);
    }
  }
});

test('config and the report list only the options the scenario used', () => {
  const expected: Record<ScenarioName, string[]> = {
    pingpong: ['clients', 'concurrency', 'drain', 'duration', 'payload', 'warmup', 'workers'],
    throughput: ['clients', 'concurrency', 'drain', 'duration', 'payload', 'rate', 'warmup', 'workers'],
    fanout: ['concurrency', 'drain', 'duration', 'payload', 'rate', 'roomSize', 'warmup', 'workers'],
    broadcast: ['clients', 'concurrency', 'drain', 'duration', 'payload', 'rate', 'warmup', 'workers'],
    connect: ['concurrency', 'connections', 'duration', 'workers'],
  };
  for (const scenario of SCENARIO_NAMES) {
    const run = result(scenario, 1000);
    assert.deepEqual(Object.keys(run.config).sort(), expected[scenario], scenario);
    const block = /<h2>Configuration<\/h2>\n<pre>([^<]*)<\/pre>/.exec(renderHtml(run))?.[1];
    assert.ok(block !== undefined, 'the report has a configuration block');
    assert.deepEqual(JSON.parse(block.replace(/&#34;/g, '"')), run.config);
  }
  assert.match(formatText(result('fanout', 1000)), /^strands bench fanout: room of 1,000, 1 worker, 64 B payload/);
  assert.match(formatText(result('connect', 1000)), /^strands bench connect: 10,000 connections, 1 worker, concurrency 200/);
});

test('the per-second chart keeps a steady rate off the frame, and its legend out of the plot', () => {
  // fanout: 1,000 members x 100 publishes/s, the same every second.
  const html = renderHtml(compared('fanout', 100_000));
  const svg = html.split('<svg ').at(-1)!;
  const frame = /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(svg);
  assert.ok(frame, 'the chart has a frame');
  const [x, y, width, height] = frame.slice(1).map(Number) as [number, number, number, number];
  const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]+)"/g)].map((m) => m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]));
  assert.equal(lines.length, 2, 'one line per run');
  for (const points of lines) {
    assert.equal(points.length, WINDOW_S);
    for (const [px, py] of points) {
      assert.ok(px > x && px < x + width, `x ${px} inside the frame ${x}..${x + width}`);
      // At least the headroom below the top: the line reads against the axis, not the border.
      assert.ok(py - y >= 0.08 * height, `y ${py} well below the frame's top ${y}`);
      assert.ok(py < y + height);
    }
  }
  const rateTicks = [...svg.matchAll(/<text x="[\d.]+" y="([\d.]+)"[^>]*>[\d,]+<\/text>/g)].map((m) => Number(m[1]));
  assert.ok(rateTicks.length >= 6, 'labelled rate ticks');
  for (const name of ['broker', 'baseline']) {
    const legend = new RegExp(`<text x="[\\d.]+" y="([\\d.]+)">${name}</text>`).exec(svg);
    assert.ok(legend && Number(legend[1]) < y, `the ${name} legend sits above the frame`);
  }
});

test('a --target-pid that was followed to the broker is said next to the figures', () => {
  const note = '--target-pid 99 (npm exec) does not listen on port 8080: measuring its descendant 1234 (node), which does';
  const run = result('pingpong', 1000, { targetNote: note });
  assert.equal(run.target.pidNote, note);
  assert.ok(formatText(run).includes(`note: broker run: ${note}`));
  assert.equal(result('pingpong', 1000).target.pidNote, undefined);
});
