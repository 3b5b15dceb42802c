/**
 * The bench gate's comparisons on made-up runs: which runs are paired, what
 * the checked figure is, where it passes and fails, and its flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuRatio, e2eChecks, lossCheck, pairOrder, parseArgs, seriesTable, settled, spreadTable, THRESHOLDS, type E2ERun, type GateReport } from '../../scripts/bench-gate';

function run(kind: E2ERun['kind'], cpuUsPerOp: number | null, lost = 0): E2ERun {
  return { kind, rate: 1000, cpuUsPerOp, p99: 1000, lost, errors: 0, verdict: lost > 0 ? `LOST ${lost} messages` : 'OK', harnessWorkerCpu: 50 };
}

/** Runs in the gate's order, broker CPU per op `ratio` times the baseline's in each pair. */
function runsAt(ratios: number[]): E2ERun[] {
  return ratios.flatMap((ratio, i) => pairOrder(i).map((kind) => run(kind, kind === 'broker' ? 5 * ratio : 5)));
}

test('pairOrder: each kind first in every other pair', () => {
  assert.deepEqual([0, 1, 2].flatMap(pairOrder), ['broker', 'baseline', 'baseline', 'broker', 'broker', 'baseline']);
});

test('settled: a median two standard errors from the threshold settles; a close call or too few pairs does not', () => {
  assert.equal(settled([1.5], 1.2), false, 'one pair says nothing of the spread');
  assert.equal(settled([1.0, 1.02, 0.98, 1.01], 1.2), true, 'tight and far below');
  assert.equal(settled([1.42, 1.4, 1.38], 1.2), true, 'tight and far above');
  assert.equal(settled([0.8, 1.5, 1.1, 1.3], 1.2), false, 'wide and close');
  // The same spread settles with more pairs.
  const close = [1.0, 1.25, 0.9, 1.15];
  assert.equal(settled(close, 1.2), false);
  assert.equal(settled([...close, ...close, ...close, ...close], 1.2), true);
});

test('cpuRatio is the median of the ratios within each back-to-back pair', () => {
  // Conditions change between pairs (baseline 4 then 8 µs); within each pair the broker costs 2x.
  const runs = [run('broker', 8), run('baseline', 4), run('baseline', 8), run('broker', 16), run('broker', 9), run('baseline', 3)];
  const c = cpuRatio(runs);
  assert.deepEqual(c.pairs, [2, 2, 3]);
  assert.equal(c.ratio, 2);
  assert.equal(c.broker, 9);
  assert.equal(c.baseline, 4);
});

test('a CPU check passes at its threshold and fails just past it; a missing figure fails', () => {
  const limit = THRESHOLDS.fanoutCpu;
  const at = e2eChecks('fanout', runsAt([limit, limit * 0.9, limit * 1.05]))[0]!;
  assert.equal(at.id, 'fanoutCpu');
  assert.equal(at.pass, true);
  const past = e2eChecks('fanout', runsAt([limit * 1.01, limit * 0.9, limit * 1.05]))[0]!;
  assert.equal(past.pass, false);
  const missing = e2eChecks('pingpong', [run('broker', null), run('baseline', 5)])[0]!;
  assert.equal(missing.pass, false);
  assert.equal(missing.measured, 'not measured');
});

test('one lost message in any run fails the loss check', () => {
  assert.equal(lossCheck([run('broker', 5), run('baseline', 5)]).pass, true);
  const lost = lossCheck([run('broker', 5), run('baseline', 5, 3)]);
  assert.equal(lost.pass, false);
  assert.match(lost.measured, /baseline: LOST 3 messages/);
});

test('the spread table gives min, median, max and passes per gated figure', () => {
  const report = (value: number, pass: boolean): GateReport =>
    ({ checks: [{ id: 'pingpongCpu', name: 'pingpong', measured: '', threshold: '<= 2.30x', pass, value }, { id: 'noLoss', name: 'loss', measured: '', threshold: '0', pass: true }] }) as GateReport;
  const table = spreadTable([report(2.0, true), report(2.4, false), report(1.9, true)]);
  assert.match(table, /pingpongCpu\s+<= 2\.30x\s+1\.90x\s+2\.00x\s+2\.40x\s+2\/3/);
  assert.match(table, /noLoss\s+0\s+3\/3/);
});

test('the series table: load, the range of each figure, and the runs that pass today\'s thresholds, whatever a run was judged by', () => {
  const report = (load: number, figures: Record<string, number>, lostNothing = true): GateReport =>
    ({
      machine: { loadAtStart: [load], loadAverage: [load + 1] },
      checks: [...Object.entries(figures).map(([id, value]) => ({ id, name: id, measured: '', threshold: 'old', pass: true, value })), { id: 'noLoss', name: 'loss', measured: '', threshold: '0', pass: lostNothing }],
    }) as GateReport;
  const ok = { framerVsFloor: THRESHOLDS.framerVsFloor, serializersVsJson: 2, pingpongCpu: THRESHOLDS.pingpongCpu, fanoutCpu: 1 };
  const table = seriesTable([
    { name: 'busy', runs: [report(2, ok), report(3.5, { ...ok, fanoutCpu: THRESHOLDS.fanoutCpu * 1.01 }), report(1, ok, false)] },
    { name: 'micro only', runs: [report(4, { framerVsFloor: 0.9, serializersVsJson: 2 })] },
  ]);
  const rows = table.split('\n');
  assert.match(rows[0]!, /^\| series \| gate runs \| 1-min load \| `framerVsFloor` >= 0\.80x \| `serializersVsJson` >= 1\.67x \| `pingpongCpu` <= 2\.20x \| `fanoutCpu` <= 1\.20x \| runs passing/);
  assert.equal(rows[2], `| busy | 3 | 1.0-4.5 | 0.80-0.80x | 2.00-2.00x | 2.20-2.20x | 1.00-${(THRESHOLDS.fanoutCpu * 1.01).toFixed(2)}x | 1/3 |`);
  assert.equal(rows[3], '| micro only | 1 | 4.0-5.0 | 0.90-0.90x | 2.00-2.00x | - | - | 0/1 |', 'a figure not measured does not pass');
});

test('flags: defaults, overrides, and bad values refused', () => {
  const d = parseArgs([]);
  assert.equal(d.runs, undefined);
  assert.equal(d.duration, undefined);
  assert.equal(d.microRounds, 9);
  assert.equal(d.repeat, 1);
  const o = parseArgs(['--runs', '2', '--duration', '1.5', '--skip-micro', '--repeat', '3']);
  assert.equal(o.runs, 2);
  assert.equal(o.duration, 1.5);
  assert.equal(o.skipMicro, true);
  assert.equal(o.repeat, 3);
  assert.equal(d.spread, undefined);
  assert.deepEqual(parseArgs(['--spread', 'a.json', 'b.json']).spread, ['a.json', 'b.json']);
  for (const bad of [['--spread'], ['a.json'], ['--runs', '0'], ['--runs', 'x'], ['--duration', '0'], ['--micro-rounds', '4'], ['--repeat', '-1'], ['--warmup', '-1']]) {
    assert.throws(() => parseArgs(bad), Error, bad.join(' '));
  }
});
