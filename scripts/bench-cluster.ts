/**
 * Measures a fanout room on one broker against the same room on a cluster of
 * two, several runs of each, keeps every run's `strands bench --json` result
 * in bench/results/ and renders the "Cluster" figures of docs/benchmarks.md
 * from those files.
 *
 *   node dist/scripts/bench-cluster.js [--runs 5] [--duration 10] [--warmup 2] [--room-size 1000] [--rate 100]
 *        [--quiet-below 50] [--max-others 30] [--doc docs/benchmarks.md]
 *   node dist/scripts/bench-cluster.js --from-results [--doc docs/benchmarks.md]
 *
 * Three variants, all started by the harness on free ports and pinned to CPU 0
 * (brokers and nats-server), the harness and its workers on CPU 1 (it
 * re-starts itself under `taskset -c 1`):
 *   one     one broker, the whole room on it (no cluster)
 *   split   two brokers over a nats-server, the room's members spread over
 *           both; the harness's backend on node 1
 *   remote  the same cluster with every member on node 2, the backend on node 1:
 *           each message crosses the bus before any delivery
 * A round runs each variant once, in an order that rotates from round to
 * round, so that a slow spell on the shared machine does not favour one. Each
 * run's JSON goes to bench/results/fanout-cluster.<variant>.<round>.json and
 * bench/results/fanout-cluster.json lists them, with the load average (from
 * /proc/loadavg) when each started.
 *
 * On a machine shared with other work, --quiet-below P waits before each run
 * (at most QUIET_WAIT_S seconds) until the machine's CPU use over 2 s is
 * below P % of one core, all cores summed; each run's JSON says how much CPU
 * other processes took during its window all the same. --max-others P makes a
 * run again (MAX_ATTEMPTS runs at the most) when other processes took more
 * than P % of a core during its window; the runs set aside stay in
 * bench/results/ as fanout-cluster.<variant>.<round>.disturbed-<n>.json and
 * the index names them.
 *
 * --doc FILE replaces the text between `<!-- bench-cluster:start -->` and
 * `<!-- bench-cluster:end -->` in FILE with the figures: medians and ranges
 * over the rounds, and the two targets (brokers' CPU per delivery summed <=
 * 1.3x one broker's; the hop adds <= 1 ms at p50).
 */
import { parseArgs as parseArgv } from 'node:util';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority, loadavg } from 'node:os';
import * as path from 'node:path';
import { median } from '../bench/micro/common';
import { exitOnSignals, runOn, writeOutputs, type BenchResult, type Target } from '../src/bench';
import { readMachineCpuUs } from '../src/bench/proc-stats';
import { pinHarness, runMain } from './bench-gate';
import { commandLine, RESULTS_DIR, writeIntoDoc, type ResultsIndex } from './bench-table';

const INDEX = 'fanout-cluster.json';
export const CLUSTER_START = '<!-- bench-cluster:start -->';
export const CLUSTER_END = '<!-- bench-cluster:end -->';

/** The targets: a cluster's brokers together may spend this much more CPU per delivery than one broker... */
export const MAX_CPU_RATIO = 1.3;
/** ...and crossing nodes may add this much to the median latency, µs. */
export const MAX_HOP_P50_US = 1000;

export type Variant = 'one' | 'split' | 'remote';
const VARIANTS: readonly Variant[] = ['one', 'split', 'remote'];

const VARIANT_LABEL: Record<Variant, string> = {
  one: 'one broker, whole room',
  split: '2 nodes, room split',
  remote: '2 nodes, every member on node 2',
};

function targetOf(variant: Variant): { target: Target; clientNodes?: number[] } {
  if (variant === 'one') return { target: { kind: 'spawn' } };
  return { target: { kind: 'spawn', nodes: 2 }, ...(variant === 'remote' ? { clientNodes: [2] } : {}) };
}

interface SeriesOptions {
  runs: number;
  duration: number;
  warmup: number;
  roomSize: number;
  rate: number;
  doc: string | undefined;
  fromResults: boolean;
  /** Before each run, wait for the machine's CPU use to fall below this, % of one core. */
  quietBelow: number | undefined;
  /** Make a run again when other processes took more than this (% of one core) during its window. */
  maxOthers: number | undefined;
}

export interface Entry {
  variant: Variant;
  round: number;
  file: string;
  /** /proc/loadavg's 1, 5 and 15 minute averages as the run started. */
  loadAverage: [number, number, number];
  /** The machine's CPU use over the 2 s before the run, % of one core (all cores summed). */
  busyBefore: number;
  /** Runs of this round and variant made before this one and set aside (--max-others), their files. */
  disturbed: string[];
}

/** bench/results/fanout-cluster.json: the runs and how they were made. */
export type Index = ResultsIndex<Entry>;

function parseArgs(argv: string[]): SeriesOptions {
  const { values } = parseArgv({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      'room-size': { type: 'string', default: '1000' },
      rate: { type: 'string', default: '100' },
      doc: { type: 'string' },
      'quiet-below': { type: 'string' },
      'max-others': { type: 'string' },
      'from-results': { type: 'boolean', default: false },
    },
  });
  const o: SeriesOptions = {
    runs: Number(values.runs),
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    roomSize: Number(values['room-size']),
    rate: Number(values.rate),
    doc: values.doc,
    fromResults: values['from-results'] === true,
    quietBelow: values['quiet-below'] === undefined ? undefined : Number(values['quiet-below']),
    maxOthers: values['max-others'] === undefined ? undefined : Number(values['max-others']),
  };
  for (const [flag, value] of [['--quiet-below', o.quietBelow], ['--max-others', o.maxOthers]] as const) {
    if (value !== undefined && !(value > 0)) throw new Error(`${flag} must be a number > 0 (% of one core)`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a whole number >= 1');
  if (!Number.isInteger(o.roomSize) || o.roomSize < 2) throw new Error('--room-size must be a whole number >= 2 (a room split over two nodes)');
  if (!(o.duration > 0) || !(o.warmup >= 0) || !(o.rate > 0)) throw new Error('--duration and --rate must be > 0, --warmup >= 0');
  return o;
}

/** Runs of one round and variant at the most, with --max-others: the last one counts however disturbed. */
const MAX_ATTEMPTS = 5;
/** The longest wait for a quiet machine before a run goes ahead anyway. */
const QUIET_WAIT_S = 300;
const BUSY_SAMPLE_MS = 2000;

/** The machine's CPU use over the next 2 s, % of one core. */
async function busyPercent(): Promise<number> {
  const from = readMachineCpuUs();
  await new Promise((resolve) => setTimeout(resolve, BUSY_SAMPLE_MS));
  return (100 * (readMachineCpuUs() - from)) / (BUSY_SAMPLE_MS * 1000);
}

/** Waits until the machine is busy below `limit` % of a core, or QUIET_WAIT_S have passed; returns the last reading. */
async function waitForQuiet(limit: number | undefined): Promise<number> {
  const deadline = Date.now() + QUIET_WAIT_S * 1000;
  let busy = await busyPercent();
  while (limit !== undefined && busy >= limit && Date.now() < deadline) busy = await busyPercent();
  return busy;
}

/** The variants in round `round`'s order: rotated by one each round. */
export function roundOrder(round: number): Variant[] {
  const shift = (round - 1) % VARIANTS.length;
  return [...VARIANTS.slice(shift), ...VARIANTS.slice(0, shift)];
}

async function measureSeries(o: SeriesOptions, cpu: number | undefined, pinning: string): Promise<Index> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const entries: Entry[] = [];
  for (let round = 1; round <= o.runs; round++) {
    for (const variant of roundOrder(round)) {
      const { target, clientNodes } = targetOf(variant);
      const disturbed: string[] = [];
      for (let attempt = 1; ; attempt++) {
        const busyBefore = Math.round(await waitForQuiet(o.quietBelow));
        // As /proc/loadavg prints it: two decimals.
        const load = loadavg().map((v) => Math.round(v * 100) / 100) as [number, number, number];
        process.stderr.write(`round ${round}/${o.runs}: ${VARIANT_LABEL[variant]} (load average ${load.join(' ')}, machine busy ${busyBefore}% of a core)...\n`);
        const result = await runOn(target, { scenario: 'fanout', roomSize: o.roomSize, rate: o.rate, payload: 64, duration: o.duration, warmup: o.warmup, drain: 2, clientNodes }, cpu);
        const r = result.results;
        const others = r.machineCpuPercent?.others ?? 0;
        process.stderr.write(`  p50 ${r.latencyUs.p50} µs, brokers' CPU ${r.cpuUsPerOp} µs/delivery, nats-server ${result.cluster?.nats?.cpuUsPerOp ?? '-'} µs/delivery, others ${others}% of a core, ${result.verdict}\n`);
        const repeat = o.maxOthers !== undefined && others > o.maxOthers && attempt < MAX_ATTEMPTS;
        const file = `fanout-cluster.${variant}.${round}${repeat ? `.disturbed-${attempt}` : ''}.json`;
        writeOutputs(result, { json: path.join(RESULTS_DIR, file) });
        if (repeat) {
          disturbed.push(file);
          continue;
        }
        entries.push({ variant, round, file, loadAverage: load, busyBefore, disturbed });
        break;
      }
    }
  }
  // A run under `nice` (every process it starts inherits it) says so: it took CPU ahead of other work.
  const nice = getPriority();
  const index: Index = { command: commandLine('bench-cluster.js'), generatedAt: new Date().toISOString(), pinning: nice === 0 ? pinning : `${pinning}, every process at nice ${nice}`, entries };
  writeFileSync(path.join(RESULTS_DIR, INDEX), JSON.stringify(index, null, 2) + '\n');
  return index;
}

/** A figure over the rounds: its median and range. */
interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** A way to write a figure: the number, and its unit after the median (the range's numbers go without it). */
interface Unit {
  (n: number): string;
  suffix: string;
}

function unit(format: (n: number) => string, suffix: string): Unit {
  return Object.assign(format, { suffix });
}

function show(s: Spread | undefined, u: Unit): string {
  if (s === undefined) return '-';
  return `${u(s.median)}${u.suffix} (${u(s.min)} to ${u(s.max)})`;
}

const us = unit((n) => n.toFixed(2), ' µs');
const ms = unit((n) => (n / 1000).toFixed(2), ' ms');
const signedMs = unit((n) => `${n < 0 ? '−' : '+'}${(Math.abs(n) / 1000).toFixed(2)}`, ' ms');
const percent = unit((n) => n.toFixed(0), '%');
const perSecond = unit((n) => n.toFixed(0), '/s');
const times = unit((n) => n.toFixed(2), 'x');
const withUnit = (u: Unit, n: number): string => `${u(n)}${u.suffix}`;

/** Whether a target is met, for the doc. */
function met(ok: boolean): string {
  return ok ? 'met' : '**not met**';
}

/** The figures and the targets as markdown, from the index and the files it lists (in `dir`). */
export function renderCluster(index: Index, dir = RESULTS_DIR): string {
  const load = (e: Entry) => JSON.parse(readFileSync(path.join(dir, e.file), 'utf8')) as BenchResult;
  const runs = index.entries.map((e) => ({ e, r: load(e) }));
  const of = (v: Variant) => runs.filter((x) => x.e.variant === v).map((x) => x.r);
  const rounds = [...new Set(index.entries.map((e) => e.round))].sort((a, b) => a - b);
  const inRound = (v: Variant, round: number) => runs.find((x) => x.e.variant === v && x.e.round === round)?.r;
  const values = (v: Variant, pick: (r: BenchResult) => number | null | undefined): number[] =>
    of(v)
      .map(pick)
      .filter((n): n is number => typeof n === 'number');
  /** A figure of two variants' runs of the same round, over the rounds. */
  const paired = (a: Variant, b: Variant, f: (x: BenchResult, y: BenchResult) => number | null): number[] =>
    rounds.flatMap((round) => {
      const x = inRound(a, round);
      const y = inRound(b, round);
      const value = x && y ? f(x, y) : null;
      return value === null ? [] : [value];
    });
  const node = (r: BenchResult, n: number) => r.cluster?.nodes[n - 1];
  const row = (label: string, cells: Record<Variant, string>) => `| ${label} | ${VARIANTS.map((v) => cells[v]).join(' | ')} |`;
  const each = (pick: (r: BenchResult) => number | null | undefined, u: Unit, only: readonly Variant[] = VARIANTS) =>
    Object.fromEntries(VARIANTS.map((v) => [v, only.includes(v) ? show(spread(values(v, pick)), u) : '-'])) as Record<Variant, string>;
  const clustered: readonly Variant[] = ['split', 'remote'];

  const cpuRatios = paired('split', 'one', (split, one) => (split.results.cpuUsPerOp !== null && one.results.cpuUsPerOp ? split.results.cpuUsPerOp / one.results.cpuUsPerOp : null));
  const cpuSplit = spread(values('split', (r) => r.results.cpuUsPerOp));
  const cpuOne = spread(values('one', (r) => r.results.cpuUsPerOp));
  const cpuRatio = cpuSplit && cpuOne ? cpuSplit.median / cpuOne.median : NaN;
  const hops = paired('remote', 'one', (remote, one) => remote.results.latencyUs.p50 - one.results.latencyUs.p50);
  const hop = spread(hops);
  const sameRun = spread(values('split', (r) => node(r, 2)?.overBackendNodeUs?.p50));
  const loads = spread(index.entries.map((e) => e.loadAverage[0]));
  const busy = spread(index.entries.map((e) => e.busyBefore));
  const setAside = index.entries.reduce((n, e) => n + e.disturbed.length, 0);
  const lost = runs.reduce((n, x) => n + x.r.results.lost, 0);
  const errors = runs.reduce((n, x) => n + x.r.results.errors, 0);
  const first = runs[0]?.r;
  const c = first?.config;

  return [
    `Generated by \`${index.command}\` at ${index.generatedAt.slice(0, 16).replace('T', ' ')} UTC` +
      (first ? ` on ${first.machine.cores} × ${first.machine.cpuModel}, node ${first.machine.node}` : '') +
      `; ${index.pinning} (brokers and nats-server share CPU 0); fanout, a room of ${c?.roomSize ?? '?'} at ${c?.rate ?? '?'} publishes/s, ${c?.payload ?? '?'}-byte payloads, ${c?.duration ?? '?'} s window after ${c?.warmup ?? '?'} s warmup; ` +
      `${rounds.length} rounds, each variant once a round in a rotating order. Each cell: median over the rounds (min to max). ` +
      `As the runs started: load average (1 min) ${loads ? `${loads.median.toFixed(1)} (${loads.min.toFixed(1)} to ${loads.max.toFixed(1)})` : '-'}, the machine's CPU use over the 2 s before ${show(busy, percent)} of a core. ` +
      `${setAside === 0 ? '' : `${setAside} ${setAside === 1 ? 'run was' : 'runs were'} made again because other processes took too much CPU during their window (--max-others; set aside in bench/results/ and named in the index). `}` +
      `Lost ${lost}, errors ${errors} over the ${runs.length} runs counted.`,
    '',
    `| | ${VARIANTS.map((v) => VARIANT_LABEL[v]).join(' | ')} |`,
    `|---|${VARIANTS.map(() => '---:').join('|')}|`,
    row("brokers' CPU per delivery, summed", each((r) => r.results.cpuUsPerOp, us)),
    row('node 1 CPU per delivery', each((r) => node(r, 1)?.cpuUsPerOp, us, ['split'])),
    row('node 2 CPU per delivery', each((r) => node(r, 2)?.cpuUsPerOp, us, clustered)),
    row("brokers' CPU, % of a core (summed)", each((r) => r.results.targetCpuPercent, percent)),
    row('node 1 CPU, % of a core (the backend\'s node)', each((r) => node(r, 1)?.cpuPercent, percent, clustered)),
    row('nats-server CPU per delivery (not in the sum)', each((r) => r.cluster?.nats?.cpuUsPerOp, us, clustered)),
    row('nats-server CPU, % of a core', each((r) => r.cluster?.nats?.cpuPercent, percent, clustered)),
    row('latency p50, every client', each((r) => r.results.latencyUs.p50, ms)),
    row('latency p99, every client', each((r) => r.results.latencyUs.p99, ms)),
    row("latency p50, node 1's clients", each((r) => node(r, 1)?.latencyUs?.p50, ms, ['split'])),
    row("latency p50, node 2's clients", each((r) => node(r, 2)?.latencyUs?.p50, ms, clustered)),
    row("node 2's p50 over node 1's, same run", each((r) => node(r, 2)?.overBackendNodeUs?.p50, signedMs, ['split'])),
    row('bus frames published to NATS', each((r) => r.cluster?.bus?.publishedPerSecond, perSecond, clustered)),
    row('bus frames received from NATS', each((r) => r.cluster?.bus?.receivedPerSecond, perSecond, clustered)),
    row('other processes on the machine, % of a core', each((r) => r.results.machineCpuPercent?.others, percent)),
    '',
    '| target | measured | met |',
    '|---|---|---|',
    `| per delivery, both brokers' CPU summed (nats-server apart) <= ${MAX_CPU_RATIO}x one broker serving the whole room | ${cpuSplit ? withUnit(us, cpuSplit.median) : '-'} vs ${cpuOne ? withUnit(us, cpuOne.median) : '-'}: **${withUnit(times, cpuRatio)}** (ratio of the medians; the rounds' own ratios ${show(spread(cpuRatios), times)}) | ${met(cpuRatio <= MAX_CPU_RATIO)} |`,
    `| the cross-node hop adds <= ${withUnit(ms, MAX_HOP_P50_US)} at p50 on loopback | every member on node 2 against one broker: **${show(hop, signedMs)}** (the rounds' differences of p50); in the split room, node 2's clients over node 1's: ${show(sameRun, signedMs)} | ${met(hop !== undefined && hop.median <= MAX_HOP_P50_US)} |`,
  ].join('\n');
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  let index: Index;
  if (o.fromResults) {
    index = JSON.parse(readFileSync(path.join(RESULTS_DIR, INDEX), 'utf8')) as Index;
  } else {
    const pin = pinHarness();
    if ('exitWith' in pin) return pin.exitWith;
    exitOnSignals();
    process.stderr.write(`bench cluster: ${pin.pinning.note}\n`);
    index = await measureSeries(o, pin.pinning.serverCpu, pin.pinning.note);
  }
  const body = renderCluster(index);
  console.log(body);
  if (o.doc) {
    writeIntoDoc(path.resolve(o.doc), body, CLUSTER_START, CLUSTER_END);
    process.stderr.write(`wrote the cluster figures into ${o.doc}\n`);
  }
  return 0;
}

if (require.main === module) runMain(main);
