/**
 * Shared plumbing for the micro benchmarks (bench/micro/*.bench.ts).
 *
 * Each suite is a list of cases: `pairs` put our implementation next to the
 * naive one it replaces, or next to a floor of the work any implementation
 * must do (the CI gate reads some of their ratios), `singles` are plain
 * costs. Figures come from `measurePair`: it interleaves the two sides of a
 * pair over several short rounds, each measured by mitata's measure() on the
 * process's CPU clock, and keeps the median of the per-round ratios, so a
 * burst of noise from the other core spoils one round, not the figure.
 * run-all.ts measures every suite that way (measureMicro(); measureGateMicro()
 * for the CI gate);
 * a suite file run alone (`node dist/bench/micro/framer.bench.js`) prints the
 * same figures for its own cases, and with --mitata first mitata's full
 * report (bench/group/summary/run: wall clock, histograms, slower).
 */
import './expose-gc'; // before mitata: it looks for gc() when it loads
import { bench, do_not_optimize, group, measure, run, summary } from 'mitata';

export { do_not_optimize };

export interface MicroCase {
  /** Stable id, used in details: e.g. 'framer.ours'. */
  key: string;
  /** Display name. */
  name: string;
  /** One iteration. Must do the same work every call and feed its result to do_not_optimize. */
  fn: () => void;
  /** Items (lines, events, ops) handled per call, for ns per item. */
  items: number;
  /** What an item is: 'line', 'event', 'op', 'pick'. */
  unit: string;
}

export interface MicroPair {
  key: string;
  title: string;
  ours: MicroCase;
  /** What ours is compared with: the naive code it replaces, or a floor (see the suite). */
  naive: MicroCase;
}

export interface MicroSuite {
  name: string;
  pairs: MicroPair[];
  singles: MicroCase[];
}

export interface MeasureOptions {
  /** Interleaved rounds per pair (odd, so the median is a real round). */
  rounds: number;
  /** mitata min_cpu_time per case per round, in ms. */
  minCpuMs: number;
}

export const DEFAULT_MEASURE: MeasureOptions = { rounds: 5, minCpuMs: 100 };

/** Which statistic of a round stands for its time per call. */
export type Stat = 'avg' | 'p50';
/**
 * The mean of a round's samples (mitata already drops the 2 fastest and 2
 * slowest). Unlike p50 it keeps the amortized cost of garbage collection,
 * which is much of what the naive versions pay for; the median over rounds
 * then takes care of noisy rounds.
 */
export const STAT: Stat = 'avg';

export interface CaseResult {
  key: string;
  name: string;
  unit: string;
  items: number;
  /** Median over rounds of the round's STAT, ns per call. */
  nsPerCall: number;
  /** nsPerCall / items. */
  nsPerItem: number;
  /** Median over rounds of the round's p50, ns per call (for comparison). */
  p50PerCall: number;
  /** Per-round STAT, ns per call. */
  roundNs: number[];
}

export interface PairResult {
  key: string;
  title: string;
  ours: CaseResult;
  naive: CaseResult;
  /** ours ops/s ÷ naive ops/s = naive time ÷ ours time: median of the per-round ratios. */
  ratio: number;
  roundRatios: number[];
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

export function geomean(values: readonly number[]): number {
  return Math.exp(values.reduce((a, v) => a + Math.log(v), 0) / values.length);
}

/**
 * Calls per sample when a call is short (mitata batches calls under 65 µs).
 * mitata's fixed default (4096, and at least 12 samples) would stretch a
 * 40 µs call to 2 s per measurement; here each case gets enough calls for a
 * ~0.5 ms sample, measured at its warm-up, so that the clock's own cost
 * (~1 µs for the CPU clock) stays near 0.2 % of a sample.
 */
const TARGET_SAMPLE_NS = 500_000;
const batchOf = new WeakMap<MicroCase, number>();

function batchFor(avgNs: number): number {
  let b = 16;
  while (b < 4096 && b * avgNs < TARGET_SAMPLE_NS) b *= 2;
  return b;
}

/** This process's CPU time (all its threads, user + system), in ns. */
export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1e3;
}

/**
 * The clock the gate measures with. 'cpu' (default): this process's CPU time,
 * so time the scheduler gives to other processes on a shared 2-core box does
 * not count (same per-item figures as the wall clock on an idle machine, far
 * steadier rounds on a busy one). MICRO_CLOCK=wall for wall time.
 */
export type Clock = 'wall' | 'cpu';
export const CLOCK: Clock = process.env.MICRO_CLOCK === 'wall' ? 'wall' : 'cpu';

async function once(c: MicroCase, minCpuMs: number): Promise<{ avg: number; p50: number }> {
  const stats = await measure(c.fn, { min_cpu_time: minCpuMs * 1e6, batch_samples: batchOf.get(c) ?? 64, ...(CLOCK === 'cpu' ? { now: cpuNow } : {}) });
  return { avg: stats.avg, p50: stats.p50 };
}

/** A short first measurement: warms the JIT and sizes the case's batches. */
async function warm(c: MicroCase, opts: MeasureOptions): Promise<void> {
  const { avg } = await once(c, Math.max(20, opts.minCpuMs / 2));
  batchOf.set(c, batchFor(avg));
}

function caseResult(c: MicroCase, rounds: { avg: number; p50: number }[]): CaseResult {
  const roundNs = rounds.map((r) => r[STAT]);
  const nsPerCall = median(roundNs);
  return {
    key: c.key,
    name: c.name,
    unit: c.unit,
    items: c.items,
    nsPerCall,
    nsPerItem: nsPerCall / c.items,
    p50PerCall: median(rounds.map((r) => r.p50)),
    roundNs,
  };
}

/** Both sides of a pair, interleaved round by round (ABBA order), after a short warm-up of each. */
export async function measurePair(pair: MicroPair, opts: MeasureOptions = DEFAULT_MEASURE): Promise<PairResult> {
  await warm(pair.ours, opts);
  await warm(pair.naive, opts);
  const ours: { avg: number; p50: number }[] = [];
  const naive: { avg: number; p50: number }[] = [];
  const roundRatios: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    let o: { avg: number; p50: number };
    let n: { avg: number; p50: number };
    if (r % 2 === 0) {
      o = await once(pair.ours, opts.minCpuMs);
      n = await once(pair.naive, opts.minCpuMs);
    } else {
      n = await once(pair.naive, opts.minCpuMs);
      o = await once(pair.ours, opts.minCpuMs);
    }
    ours.push(o);
    naive.push(n);
    roundRatios.push(n[STAT] / o[STAT]);
  }
  return {
    key: pair.key,
    title: pair.title,
    ours: caseResult(pair.ours, ours),
    naive: caseResult(pair.naive, naive),
    ratio: median(roundRatios),
    roundRatios,
  };
}

/** A single case: a warm-up, then the median of a few rounds. */
export async function measureCase(c: MicroCase, opts: MeasureOptions = DEFAULT_MEASURE): Promise<CaseResult> {
  await warm(c, opts);
  const rounds: { avg: number; p50: number }[] = [];
  const n = Math.max(1, Math.min(3, opts.rounds));
  for (let r = 0; r < n; r++) rounds.push(await once(c, opts.minCpuMs));
  return caseResult(c, rounds);
}

/** Registers a suite with mitata (group per pair, naive as the summary baseline). */
export function registerSuite(suite: MicroSuite): void {
  for (const pair of suite.pairs) {
    group(`${suite.name}: ${pair.title}`, () => {
      summary(() => {
        bench(pair.naive.name, pair.naive.fn).baseline();
        bench(pair.ours.name, pair.ours.fn);
      });
    });
  }
  if (suite.singles.length > 0) {
    group(suite.name, () => {
      for (const c of suite.singles) bench(c.name, c.fn);
    });
  }
}

/** Runs suites through mitata's runner and report, then prints ns per item from its results. */
export async function runWithMitata(suites: MicroSuite[]): Promise<void> {
  for (const s of suites) registerSuite(s);
  const { benchmarks } = await run();
  const byName = new Map<string, MicroCase>();
  for (const s of suites) {
    for (const p of s.pairs) {
      byName.set(p.ours.name, p.ours);
      byName.set(p.naive.name, p.naive);
    }
    for (const c of s.singles) byName.set(c.name, c);
  }
  const avg = new Map<string, number>();
  const rows: string[][] = [['case', 'avg/call', 'p50/call', 'per item']];
  for (const trial of benchmarks) {
    for (const r of trial.runs) {
      if (r.stats === undefined) continue;
      const c = byName.get(r.name);
      if (c === undefined) continue;
      avg.set(c.key, r.stats.avg);
      rows.push([c.name, fmtNs(r.stats.avg), fmtNs(r.stats.p50), `${fmtNs(r.stats.avg / c.items)}/${c.unit}`]);
    }
  }
  console.log('\nper item (from mitata avg):');
  console.log(table(rows));
  for (const s of suites) {
    for (const p of s.pairs) {
      const o = avg.get(p.ours.key);
      const n = avg.get(p.naive.key);
      if (o !== undefined && n !== undefined) console.log(`${s.name} ${p.title}: ours ÷ naive ops/s = ${(n / o).toFixed(2)}x`);
    }
  }
}

export function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return String(ns);
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  if (ns >= 10) return `${ns.toFixed(1)} ns`;
  return `${ns.toFixed(2)} ns`;
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  ');
  const out = [line(rows[0] as string[]), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows.slice(1)) out.push(line(row));
  return out.join('\n');
}


/** The gate's view of suites: pairs measured with measurePair, singles with measureCase, as run-all does. */
export async function printSuites(suites: MicroSuite[], opts: MeasureOptions = DEFAULT_MEASURE): Promise<PairResult[]> {
  const results: PairResult[] = [];
  const rows: string[][] = [['pair', 'ours/item', 'naive/item', 'ours ÷ naive ops/s', 'rounds']];
  const singles: string[][] = [['case', 'per call', 'per item']];
  for (const suite of suites) {
    for (const pair of suite.pairs) {
      const r = await measurePair(pair, opts);
      results.push(r);
      rows.push([r.key, `${fmtNs(r.ours.nsPerItem)}/${r.ours.unit}`, `${fmtNs(r.naive.nsPerItem)}/${r.naive.unit}`, `${r.ratio.toFixed(2)}x`, r.roundRatios.map((x) => x.toFixed(2)).join(' ')]);
    }
    for (const c of suite.singles) {
      const r = await measureCase(c, opts);
      singles.push([c.name, fmtNs(r.nsPerCall), `${fmtNs(r.nsPerItem)}/${r.unit}`]);
    }
  }
  console.log(`${suites.map((s) => s.name).join(', ')} (${process.version}; ${CLOCK} clock; median of ${opts.rounds} interleaved rounds of ${opts.minCpuMs} ms, as run-all measures)`);
  if (rows.length > 1) console.log('\n' + table(rows));
  if (singles.length > 1) console.log('\n' + table(singles));
  return results;
}

/**
 * Entry point for a suite file run on its own: the same-run figures run-all
 * uses (a few seconds); with --mitata, mitata's full report first (wall
 * clock, its default sampling: slower, and noisier on a busy machine).
 */
export function mainOf(build: () => MicroSuite): void {
  (async () => {
    const suite = build();
    if (process.argv.includes('--mitata')) await runWithMitata([suite]);
    await printSuites([suite]);
  })().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
