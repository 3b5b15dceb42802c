/**
 * The CI performance gate (`npm run bench:gate`, run by .ci/run after the
 * tests). Every figure it checks is a ratio measured in this one run, never an
 * absolute time, because CI machines here are shared 2-core VMs:
 *
 *   micro (bench/micro, measureMicro):
 *     LineFramer vs the naive toString+split framer, realistic mix  >= 2x
 *     new_message serializer vs JSON.stringify                      >= 1.5x
 *     RingBuffer vs Array (geomean of steady, full, burst)          >= 1x
 *   end to end (src/bench, pingpong, 100 clients, 64-byte payloads):
 *     broker round trips/s vs the bare uWebSockets.js echo          >= 0.60
 *     broker CPU per round trip vs bare server CPU per echo         <= 2x
 *     no message lost, no error, in any run
 *
 * End to end, short runs alternate (broker, baseline, baseline, broker, ...)
 * and the gate compares the medians, so a burst of noise from elsewhere on the
 * machine spoils one run, not the verdict. Servers run on CPU 0 and this
 * process (the harness, whose worker processes inherit its affinity) on CPU 1,
 * both with taskset; without taskset (or with fewer than 2 CPUs) everything
 * runs unpinned and the output says so.
 *
 *   node dist/scripts/bench-gate.js [--runs 3] [--duration 5] [--json FILE] [--skip-micro] [--skip-e2e]
 *
 * Exits 1 if any check fails (or a run could not be made), 0 otherwise.
 */
import { parseArgs as parseArgv } from 'node:util';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { median } from '../bench/micro/common';
import { measureMicro, type MicroRatios } from '../bench/micro/run-all';
import { runOn, type BenchResult } from '../src/bench';

/** Set in the environment of a process that was re-started under `taskset -c 1`. */
const PINNED_ENV = 'STRANDS_BENCH_PINNED';
export const SERVER_CPU = 0;
export const HARNESS_CPU = 1;

export interface Pinning {
  /** CPU for the servers, or undefined when unpinned. */
  serverCpu: number | undefined;
  /** One line for the output: how the roles were placed. */
  note: string;
}

function tasksetWorks(): boolean {
  const r = spawnSync('taskset', ['-c', String(SERVER_CPU), 'true'], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Re-runs this script under `taskset -c 1` unless it already is (or pinning is
 * impossible): returns the child's exit status to exit with, or undefined to
 * go on in this process, with how it is pinned.
 */
export function pinHarness(): { exitWith: number } | { pinning: Pinning } {
  const cpus = os.availableParallelism();
  if (process.env[PINNED_ENV] === '1') {
    return { pinning: { serverCpu: SERVER_CPU, note: `pinned with taskset: servers on CPU ${SERVER_CPU}, harness (this process and its workers) on CPU ${HARNESS_CPU}` } };
  }
  if (cpus < 2) return { pinning: { serverCpu: undefined, note: `UNPINNED: only ${cpus} CPU available, servers and harness share it` } };
  if (!tasksetWorks()) return { pinning: { serverCpu: undefined, note: 'UNPINNED: taskset is missing or not permitted here, servers and harness float over the CPUs' } };
  const r = spawnSync('taskset', ['-c', String(HARNESS_CPU), process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [PINNED_ENV]: '1' },
  });
  if (r.error) throw r.error;
  return { exitWith: r.status ?? 1 };
}

interface GateOptions {
  runs: number;
  duration: number;
  warmup: number;
  json: string | undefined;
  skipMicro: boolean;
  skipE2e: boolean;
}

function parseArgs(argv: string[]): GateOptions {
  const { values } = parseArgv({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      json: { type: 'string' },
      'skip-micro': { type: 'boolean', default: false },
      'skip-e2e': { type: 'boolean', default: false },
    },
  });
  const o: GateOptions = {
    runs: Number(values.runs),
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    json: values.json,
    skipMicro: values['skip-micro'] === true,
    skipE2e: values['skip-e2e'] === true,
  };
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a whole number >= 1');
  if (!(o.duration > 0) || !(o.warmup >= 0)) throw new Error('--duration must be > 0 and --warmup >= 0');
  return o;
}

/** The checks and their thresholds. Never lower one to make a run pass: report it instead. */
export const THRESHOLDS = {
  framerVsNaive: 2,
  serializersVsJson: 1.5,
  ringVsArray: 1,
  pingpongRateVsBaseline: 0.6,
  cpuPerOpVsBaseline: 2,
} as const;

interface Check {
  name: string;
  measured: string;
  threshold: string;
  pass: boolean;
  /** Informational rows do not decide the verdict. */
  info?: boolean;
}

interface E2ERun {
  kind: 'broker' | 'baseline';
  rate: number;
  cpuUsPerOp: number | null;
  p99: number | null;
  lost: number;
  errors: number;
  verdict: string;
  harnessWorkerCpu: number;
}

function e2eRun(r: BenchResult): E2ERun {
  return {
    kind: r.target.kind,
    rate: r.results.rate,
    cpuUsPerOp: r.results.cpuUsPerOp,
    p99: r.results.latencyUs.p99,
    lost: r.results.lost,
    errors: r.results.errors,
    verdict: r.verdict,
    harnessWorkerCpu: Math.max(0, ...r.results.harnessCpuPercent.workers),
  };
}

/** broker, baseline, baseline, broker, broker, baseline...: each kind runs first as often as second, so a drift over the runs favours neither. */
export function alternation(runs: number): Array<'broker' | 'baseline'> {
  const order: Array<'broker' | 'baseline'> = [];
  for (let i = 0; i < runs; i++) order.push(...(i % 2 === 0 ? (['broker', 'baseline'] as const) : (['baseline', 'broker'] as const)));
  return order;
}

async function measureE2E(o: GateOptions, serverCpu: number | undefined, log: (line: string) => void): Promise<E2ERun[]> {
  const out: E2ERun[] = [];
  for (const kind of alternation(o.runs)) {
    const t0 = performance.now();
    const result = await runOn(kind === 'broker' ? { kind: 'spawn' } : { kind: 'baseline' }, { scenario: 'pingpong', clients: 100, payload: 64, duration: o.duration, warmup: o.warmup, drain: 2 }, serverCpu);
    const run = e2eRun(result);
    out.push(run);
    log(`pingpong ${kind.padEnd(8)} ${Math.round(run.rate).toLocaleString('en-US').padStart(9)} round trips/s, ${run.cpuUsPerOp ?? '-'} µs CPU per op, p99 ${run.p99 ?? '-'} µs, harness worker ${run.harnessWorkerCpu}% CPU, ${run.verdict} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return out;
}

const x = (n: number): string => `${n.toFixed(2)}x`;

function microChecks(m: MicroRatios): Check[] {
  const p = m.details.pairs;
  const info = (key: string, label: string): Check => {
    const d = p[key];
    return {
      name: `  ${label}`,
      measured: d ? `${x(d.ratio)} (${fmtItem(d.oursNsPerItem)} vs ${fmtItem(d.naiveNsPerItem)} per ${d.unit})` : 'missing',
      threshold: 'info',
      pass: true,
      info: true,
    };
  };
  return [
    { name: 'framer vs naive: (d) mix [gate]', measured: x(m.framerVsNaive), threshold: `>= ${THRESHOLDS.framerVsNaive}x`, pass: m.framerVsNaive >= THRESHOLDS.framerVsNaive },
    info('framer.small', 'framer (a) 200 B lines, 64 KiB reads'),
    info('framer.mss', 'framer (b) 4 KiB lines, 1448 B reads'),
    info('framer.large', 'framer (c) 64 KiB lines, 16 KiB reads'),
    info('framer.mix', 'framer (d) mix'),
    info('framer.mixParse', 'framer (d) mix + JSON.parse'),
    { name: 'serializers vs JSON.stringify (new_message)', measured: x(m.serializersVsJson), threshold: `>= ${THRESHOLDS.serializersVsJson}x`, pass: m.serializersVsJson >= THRESHOLDS.serializersVsJson },
    { name: '  serializers, geomean of all four', measured: x(m.details.serializersGeomean), threshold: 'info', pass: true, info: true },
    { name: 'ring buffer vs Array (geomean)', measured: x(m.ringVsArray), threshold: `>= ${THRESHOLDS.ringVsArray}x`, pass: m.ringVsArray >= THRESHOLDS.ringVsArray },
  ];
}

function fmtItem(ns: number): string {
  return ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(1)} ns`;
}

function e2eChecks(runs: E2ERun[]): Check[] {
  const broker = runs.filter((r) => r.kind === 'broker');
  const baseline = runs.filter((r) => r.kind === 'baseline');
  const rate = (rs: E2ERun[]) => median(rs.map((r) => r.rate));
  const cpu = (rs: E2ERun[]) => median(rs.map((r) => r.cpuUsPerOp ?? NaN));
  const rateRatio = rate(broker) / rate(baseline);
  const cpuRatio = cpu(broker) / cpu(baseline);
  const bad = runs.filter((r) => r.lost > 0 || r.errors > 0);
  const list = (rs: E2ERun[], f: (r: E2ERun) => string) => rs.map(f).join(' / ');
  return [
    {
      name: 'pingpong rate: broker / bare uWS echo (medians)',
      measured: `${rateRatio.toFixed(2)} (${Math.round(rate(broker)).toLocaleString('en-US')} / ${Math.round(rate(baseline)).toLocaleString('en-US')} rt/s)`,
      threshold: `>= ${THRESHOLDS.pingpongRateVsBaseline.toFixed(2)}`,
      pass: rateRatio >= THRESHOLDS.pingpongRateVsBaseline,
    },
    { name: '  broker runs, round trips/s', measured: list(broker, (r) => Math.round(r.rate).toLocaleString('en-US')), threshold: 'info', pass: true, info: true },
    { name: '  baseline runs, echoes/s', measured: list(baseline, (r) => Math.round(r.rate).toLocaleString('en-US')), threshold: 'info', pass: true, info: true },
    {
      name: 'CPU per op: broker / bare uWS echo (medians)',
      measured: Number.isFinite(cpuRatio) ? `${x(cpuRatio)} (${cpu(broker).toFixed(2)} / ${cpu(baseline).toFixed(2)} µs)` : 'not measured',
      threshold: `<= ${THRESHOLDS.cpuPerOpVsBaseline}x`,
      pass: cpuRatio <= THRESHOLDS.cpuPerOpVsBaseline,
    },
    { name: '  broker runs, CPU µs per round trip', measured: list(broker, (r) => r.cpuUsPerOp === null ? "-" : r.cpuUsPerOp.toFixed(2)), threshold: 'info', pass: true, info: true },
    { name: '  baseline runs, CPU µs per echo', measured: list(baseline, (r) => r.cpuUsPerOp === null ? "-" : r.cpuUsPerOp.toFixed(2)), threshold: 'info', pass: true, info: true },
    { name: 'pingpong runs lost nothing, no errors', measured: bad.length === 0 ? `${runs.length} runs OK` : bad.map((r) => `${r.kind}: ${r.verdict}`).join('; '), threshold: '0 lost, 0 errors', pass: bad.length === 0 },
  ];
}

export function formatChecks(checks: Check[]): string {
  const rows = [['check', 'measured', 'threshold', 'result'], ...checks.map((c) => [c.name, c.measured, c.threshold, c.info ? '' : c.pass ? 'pass' : 'FAIL'])];
  // Left-align every column (table() right-aligns all but the first).
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const pin = pinHarness();
  if ('exitWith' in pin) return pin.exitWith;
  const { pinning } = pin;
  const t0 = performance.now();
  const log = (line: string): void => void process.stderr.write(line + '\n');
  const cpus = os.cpus();
  log(`bench gate: ${cpus.length} CPUs (${cpus[0]?.model.trim() ?? 'unknown'}), node ${process.version}; ${pinning.note}`);

  const checks: Check[] = [];
  let micro: MicroRatios | undefined;
  let runs: E2ERun[] = [];
  if (!o.skipMicro) {
    micro = await measureMicro({ log: (l) => log(`micro ${l}`) });
    checks.push(...microChecks(micro));
  }
  if (!o.skipE2e) {
    try {
      runs = await measureE2E(o, pinning.serverCpu, log);
      checks.push(...e2eChecks(runs));
    } catch (err) {
      checks.push({ name: 'pingpong runs', measured: `could not run: ${(err as Error).message.split('\n')[0]}`, threshold: 'runs', pass: false });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const pass = checks.every((c) => c.info || c.pass);
  const failed = checks.filter((c) => !c.info && !c.pass).map((c) => c.name.trim());

  const out = [
    '',
    `bench gate (${pinning.note}; ${o.runs} alternating pingpong runs of ${o.duration} s + ${o.warmup} s warmup per side, 100 clients, 64 B; ratios from this run only)`,
    '',
    formatChecks(checks),
    '',
    `${pass ? 'PASS' : 'FAIL'}: ${checks.filter((c) => !c.info && c.pass).length}/${checks.filter((c) => !c.info).length} checks passed${failed.length > 0 ? `; failed: ${failed.join(', ')}` : ''} (${seconds.toFixed(0)} s)`,
  ];
  console.log(out.join('\n'));
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({ pass, seconds, pinning: pinning.note, thresholds: THRESHOLDS, checks, micro, e2e: runs, machine: { cpuModel: cpus[0]?.model.trim(), cores: cpus.length, node: process.version } }, null, 2) + '\n');
  }
  return pass ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      console.log('FAIL: the gate could not run');
      process.exit(1);
    },
  );
}

