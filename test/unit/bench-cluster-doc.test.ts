/**
 * The "Cluster" figures of docs/benchmarks.md (scripts/bench-cluster.ts):
 * medians and ranges over the rounds, and whether each target is met.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { renderCluster, roundOrder, type Entry, type Variant } from '../../scripts/bench-cluster';

/** What a run's JSON holds of the fields the figures read. */
interface Run {
  cpu: number;
  p50: number;
  /** Per node: CPU per delivery, p50 and how far over node 1's p50. */
  nodes?: Array<{ cpu: number | null; p50: number | null; over: number | null }>;
}

function resultJson(run: Run): unknown {
  return {
    scenario: 'fanout',
    config: { roomSize: 1000, rate: 100, payload: 64, duration: 10, warmup: 2 },
    machine: { cpuModel: 'Test CPU', cores: 2, node: 'v20.20.2' },
    results: { cpuUsPerOp: run.cpu, targetCpuPercent: 40, latencyUs: { p50: run.p50, p99: run.p50 * 3 }, lost: 0, errors: 0 },
    ...(run.nodes
      ? {
          cluster: {
            nodes: run.nodes.map((n) => ({ cpuUsPerOp: n.cpu, cpuPercent: 20, latencyUs: n.p50 === null ? null : { p50: n.p50, p99: n.p50 * 3 }, overBackendNodeUs: n.over === null ? null : { p50: n.over, p99: n.over } })),
            nats: { cpuUsPerOp: 0.1, cpuPercent: 1 },
            bus: { publishedPerSecond: 100, receivedPerSecond: 100, dropped: 0 },
          },
        }
      : {}),
  };
}

/** Renders the figures of these runs, one entry per round and variant. */
function render(runs: Record<Variant, Run[]>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'strands-bench-cluster-doc-'));
  try {
    const entries: Entry[] = [];
    for (const [variant, list] of Object.entries(runs) as Array<[Variant, Run[]]>) {
      list.forEach((run, i) => {
        const file = `${variant}.${i + 1}.json`;
        writeFileSync(path.join(dir, file), JSON.stringify(resultJson(run)));
        entries.push({ variant, round: i + 1, file, loadAverage: [1 + i, 1, 1], busyBefore: 10, disturbed: i === 0 ? [`${variant}.1.disturbed-1.json`] : [] });
      });
    }
    return renderCluster({ command: 'node dist/scripts/bench-cluster.js', generatedAt: '2025-01-01T00:00:00.000Z', pinning: 'pinned', entries }, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const split = (cpu: number, over: number): Run => ({ cpu, p50: 2000, nodes: [{ cpu, p50: 1800, over: null }, { cpu, p50: 1800 + over, over }] });
const remote = (p50: number): Run => ({ cpu: 5, p50, nodes: [{ cpu: null, p50: null, over: null }, { cpu: 5, p50, over: null }] });

test('both targets met: medians and ranges over the rounds, the ratios from runs of the same round', () => {
  const doc = render({
    one: [{ cpu: 4, p50: 2000 }, { cpu: 4.4, p50: 2200 }, { cpu: 3.6, p50: 1800 }],
    split: [split(5, 2500), split(4.8, 2000), split(5.2, 3000)],
    remote: [remote(2500), remote(2900), remote(2400)],
  });
  assert.match(doc, /on 2 × Test CPU, node v20\.20\.2/);
  assert.match(doc, /3 rounds/);
  assert.match(doc, /As the runs started: load average \(1 min\) 2\.0 \(1\.0 to 3\.0\), the machine's CPU use over the 2 s before 10% \(10 to 10\) of a core\. 3 runs were made again because other processes took too much CPU during their window .*Lost 0, errors 0 over the 9 runs counted\./);
  assert.match(doc, /^\| brokers' CPU per delivery, summed \| 4\.00 µs \(3\.60 to 4\.40\) \| 5\.00 µs \(4\.80 to 5\.20\) \| 5\.00 µs \(5\.00 to 5\.00\) \|$/m);
  assert.match(doc, /^\| node 2's p50 over node 1's, same run \| - \| \+2\.50 ms \(\+2\.00 to \+3\.00\) \| - \|$/m);
  // 5.00 / 4.00; the rounds' own: 5/4, 4.8/4.4, 5.2/3.6.
  assert.match(doc, /5\.00 µs vs 4\.00 µs: \*\*1\.25x\*\* \(ratio of the medians; the rounds' own ratios 1\.25x \(1\.09 to 1\.44\)\) \| met \|$/m);
  // p50 differences per round: +500, +700, +600.
  assert.match(doc, /every member on node 2 against one broker: \*\*\+0\.60 ms \(\+0\.50 to \+0\.70\)\*\*.* \| met \|$/m);
});

test('targets missed: said as not met', () => {
  const doc = render({
    one: [{ cpu: 4, p50: 2000 }],
    split: [split(6, 2500)],
    remote: [remote(3500)],
  });
  assert.match(doc, /\*\*1\.50x\*\*.* \| \*\*not met\*\* \|$/m);
  assert.match(doc, /\*\*\+1\.50 ms \(\+1\.50 to \+1\.50\)\*\*.* \| \*\*not met\*\* \|$/m);
});

test('each round runs every variant once, the order rotating', () => {
  assert.deepEqual(roundOrder(1), ['one', 'split', 'remote']);
  assert.deepEqual(roundOrder(2), ['split', 'remote', 'one']);
  assert.deepEqual(roundOrder(3), ['remote', 'one', 'split']);
  assert.deepEqual(roundOrder(4), roundOrder(1));
});
