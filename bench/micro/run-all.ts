/**
 * Runs every micro benchmark and prints a table; `measureMicro()` returns
 * their ratios, all measured in this one run (ours ops/s ÷ the other side's
 * ops/s, so > 1 means ours is faster); `measureGateMicro()` measures only the
 * pairs the CI gate reads, with more rounds.
 *
 *   node dist/bench/micro/run-all.js            table + ratios (~20 s; ~30 s on a busy box)
 *   node dist/bench/micro/run-all.js --json     the MicroRatios object only
 *   node dist/bench/micro/run-all.js --mitata   mitata's full report for every suite instead
 *
 * How a figure is made stable on a noisy 2-core machine: the two sides of a
 * pair are measured alternately (ABBA) in several short rounds, each round by
 * mitata's measure() (warm-up, then >= 100 ms of samples, batched when a call
 * is short) on the process's CPU clock, so that time stolen by other
 * processes does not count; a round's time is the mean of its samples and the
 * pair's ratio is the median of its per-round ratios. MICRO_CLOCK=wall
 * switches to wall time.
 */
import { balancerSuite } from './balancer.bench';
import {
  CLOCK,
  DEFAULT_MEASURE,
  STAT,
  fmtNs,
  geomean,
  measureCase,
  measurePair,
  runWithMitata,
  table,
  type CaseResult,
  type MeasureOptions,
  type MicroSuite,
  type PairResult,
} from './common';
import { FLOOR_WORKLOADS, framerSuite, NAIVE_WORKLOAD } from './framer.bench';
import { ringSuite } from './ring-buffer.bench';
import { serializersSuite } from './serializers.bench';
import { textCheckSuite } from './text-check.bench';

export interface MicroPairDetail {
  title: string;
  unit: string;
  /** ns per call (a call handles `items` units), median over rounds. */
  oursNsPerCall: number;
  naiveNsPerCall: number;
  oursNsPerItem: number;
  naiveNsPerItem: number;
  items: number;
  /** ours ops/s ÷ naive ops/s (median of the per-round ratios). */
  ratio: number;
  roundRatios: number[];
}

export interface MicroSingleDetail {
  name: string;
  unit: string;
  nsPerCall: number;
  nsPerItem: number;
  items: number;
}

export interface MicroRatios {
  /**
   * LineFramer ÷ naive toString+split framer, each framing a stream and
   * decoding every line to a string, on the realistic mix (workload d: 80%
   * ~200 B, 15% 1-8 KiB, 5% 16-128 KiB lines, reads of 1448..65536 bytes).
   * Every workload's ratio is in details.pairs ('framer.small', 'framer.mss',
   * 'framer.large', 'framer.mix', 'framer.mixParse').
   */
  framerVsNaive: number;
  /**
   * LineFramer ÷ the decode floor (decode each read once, cut at each
   * newline): geometric mean over workloads (a) small and (c) large. Below 1:
   * LineFramer does more than the floor. What the CI gate checks.
   */
  framerVsFloor: number;
  /** new_message (the hot event): newMessageLine ÷ JSON.stringify. The geometric mean of all four is in details. */
  serializersVsJson: number;
  /** RingBuffer ÷ Array: geometric mean of the steady, full (drop-oldest) and burst scenarios; each is in details. */
  ringVsArray: number;
  details: {
    /** 'cpu': the process's CPU time (default), 'wall': wall time (MICRO_CLOCK=wall). */
    clock: typeof CLOCK;
    stat: typeof STAT;
    rounds: number;
    framerVsNaiveBasis: 'framer.mix';
    framerVsFloorBasis: string;
    minCpuMs: number;
    serializersVsJsonBasis: 'new_message';
    serializersGeomean: number;
    ringVsArrayBasis: 'geomean(steady, full, burst)';
    /** Raw figures, keyed like 'framer.mix', 'ser.new_message', 'ring.steady'. */
    pairs: Record<string, MicroPairDetail>;
    singles: Record<string, MicroSingleDetail>;
    node: string;
    seconds: number;
  };
}

export function allSuites(): MicroSuite[] {
  return [framerSuite(), ringSuite(), serializersSuite(), balancerSuite(), textCheckSuite()];
}

function pairDetail(r: PairResult): MicroPairDetail {
  return {
    title: r.title,
    unit: r.ours.unit,
    oursNsPerCall: r.ours.nsPerCall,
    naiveNsPerCall: r.naive.nsPerCall,
    oursNsPerItem: r.ours.nsPerItem,
    naiveNsPerItem: r.naive.nsPerItem,
    items: r.ours.items,
    ratio: r.ratio,
    roundRatios: r.roundRatios,
  };
}

function singleDetail(r: CaseResult): MicroSingleDetail {
  return { name: r.name, unit: r.unit, nsPerCall: r.nsPerCall, nsPerItem: r.nsPerItem, items: r.items };
}

export interface MeasureMicroOptions extends Partial<MeasureOptions> {
  /** Progress lines (to stderr by default); pass () => {} for silence. */
  log?: (line: string) => void;
}

/** The pairs framerVsFloor is the geometric mean of. */
export const FRAMER_FLOOR_PAIRS = FLOOR_WORKLOADS.map((w) => `framer.floor.${w}`);
/** The pair serializersVsJson is read from. */
export const SERIALIZER_PAIR = 'ser.new_message';
/** The pair framerVsNaive is read from. */
export const FRAMER_NAIVE_PAIR = `framer.${NAIVE_WORKLOAD}`;

function withDefaults(options: MeasureMicroOptions): { opts: MeasureOptions; log: (line: string) => void } {
  return {
    opts: { rounds: options.rounds ?? DEFAULT_MEASURE.rounds, minCpuMs: options.minCpuMs ?? DEFAULT_MEASURE.minCpuMs },
    log: options.log ?? ((line: string) => process.stderr.write(line + '\n')),
  };
}

/** Measures the pairs of `suites` that `want` keeps, one after the other; the ratios come from this one run. */
async function measurePairs(suites: MicroSuite[], want: (key: string) => boolean, opts: MeasureOptions, log: (line: string) => void): Promise<Record<string, MicroPairDetail>> {
  const pairs: Record<string, MicroPairDetail> = {};
  for (const suite of suites) {
    for (const pair of suite.pairs) {
      if (!want(pair.key)) continue;
      const r = await measurePair(pair, opts);
      pairs[pair.key] = pairDetail(r);
      log(`${suite.name} ${pair.title}: ours ${fmtNs(r.ours.nsPerItem)}/${r.ours.unit}, other ${fmtNs(r.naive.nsPerItem)}/${r.naive.unit}, ${r.ratio.toFixed(2)}x [${r.roundRatios.map((x) => x.toFixed(2)).join(' ')}]`);
    }
  }
  return pairs;
}

function ratioOf(pairs: Record<string, MicroPairDetail>, key: string): number {
  const p = pairs[key];
  if (p === undefined) throw new Error(`no pair ${key}`);
  return p.ratio;
}

/** Measures every suite; the ratios come from this one run. */
export async function measureMicro(options: MeasureMicroOptions = {}): Promise<MicroRatios> {
  const { opts, log } = withDefaults(options);
  const t0 = performance.now();
  const suites = allSuites();
  const pairs = await measurePairs(suites, () => true, opts, log);
  const singles: Record<string, MicroSingleDetail> = {};
  for (const suite of suites) {
    for (const c of suite.singles) {
      const r = await measureCase(c, opts);
      singles[c.key] = singleDetail(r);
      log(`${suite.name} ${c.name}: ${fmtNs(r.nsPerItem)}/${r.unit}`);
    }
  }
  const ratio = (key: string): number => ratioOf(pairs, key);
  return {
    ...gateRatios(pairs),
    ringVsArray: geomean([ratio('ring.steady'), ratio('ring.full'), ratio('ring.burst')]),
    details: {
      clock: CLOCK,
      stat: STAT,
      rounds: opts.rounds,
      framerVsNaiveBasis: 'framer.mix',
      framerVsFloorBasis: `geomean(${FRAMER_FLOOR_PAIRS.join(', ')})`,
      minCpuMs: opts.minCpuMs,
      serializersVsJsonBasis: 'new_message',
      serializersGeomean: geomean(['ser.new_message', 'ser.new_connection', 'ser.connection_request', 'ser.error'].map(ratio)),
      ringVsArrayBasis: 'geomean(steady, full, burst)',
      pairs,
      singles,
      node: process.version,
      seconds: (performance.now() - t0) / 1000,
    },
  };
}

/** What the CI gate reads of the micro benchmarks, measured alone (the other pairs and costs are left out to save time). */
export interface GateMicro {
  framerVsFloor: number;
  serializersVsJson: number;
  /** Informational: the mix against the naive framer. */
  framerVsNaive: number;
  details: { clock: typeof CLOCK; stat: typeof STAT; rounds: number; minCpuMs: number; pairs: Record<string, MicroPairDetail>; node: string; seconds: number };
}

/** The ratios the gate reads (and the framer's against the naive one, which it prints), from measured pairs. */
function gateRatios(pairs: Record<string, MicroPairDetail>): Pick<GateMicro, 'framerVsFloor' | 'serializersVsJson' | 'framerVsNaive'> {
  const ratio = (key: string): number => ratioOf(pairs, key);
  return { framerVsFloor: geomean(FRAMER_FLOOR_PAIRS.map(ratio)), serializersVsJson: ratio(SERIALIZER_PAIR), framerVsNaive: ratio(FRAMER_NAIVE_PAIR) };
}

/** The rounds the gate measures each pair in: more than bench:micro's 5, for a steadier median. */
export const GATE_MEASURE: MeasureOptions = { rounds: 9, minCpuMs: 100 };

/** Measures only the pairs the gate reads (GATE_MEASURE unless told otherwise). */
export async function measureGateMicro(options: MeasureMicroOptions = {}): Promise<GateMicro> {
  const { opts, log } = withDefaults({ ...GATE_MEASURE, ...options });
  const t0 = performance.now();
  const keys = new Set([...FRAMER_FLOOR_PAIRS, SERIALIZER_PAIR, FRAMER_NAIVE_PAIR]);
  const pairs = await measurePairs([framerSuite(), serializersSuite()], (key) => keys.has(key), opts, log);
  return {
    ...gateRatios(pairs),
    details: { clock: CLOCK, stat: STAT, rounds: opts.rounds, minCpuMs: opts.minCpuMs, pairs, node: process.version, seconds: (performance.now() - t0) / 1000 },
  };
}

export function formatMicro(r: MicroRatios): string {
  const rows: string[][] = [['case', 'ours', 'naive', 'ours/item', 'naive/item', 'ours ÷ naive ops/s', 'rounds']];
  for (const [key, p] of Object.entries(r.details.pairs)) {
    rows.push([key, fmtNs(p.oursNsPerCall), fmtNs(p.naiveNsPerCall), `${fmtNs(p.oursNsPerItem)}/${p.unit}`, `${fmtNs(p.naiveNsPerItem)}/${p.unit}`, `${p.ratio.toFixed(2)}x`, p.roundRatios.map((x) => x.toFixed(2)).join(' ')]);
  }
  const singleRows: string[][] = [['case', 'per call', 'per item']];
  for (const s of Object.values(r.details.singles)) singleRows.push([s.name, fmtNs(s.nsPerCall), `${fmtNs(s.nsPerItem)}/${s.unit}`]);
  return [
    `micro benchmarks (${r.details.node}; ${r.details.clock} clock; time = ${r.details.stat} per round, median of ${r.details.rounds} interleaved rounds of ${r.details.minCpuMs} ms; ${r.details.seconds.toFixed(1)} s)`,
    '',
    table(rows),
    '',
    table(singleRows),
    '',
    'ratios (ours ops/s ÷ the other side\'s ops/s):',
    `  framerVsFloor      ${r.framerVsFloor.toFixed(2)}x  (${r.details.framerVsFloorBasis}; the CI gate's)`,
    `  framerVsNaive      ${r.framerVsNaive.toFixed(2)}x  (${r.details.framerVsNaiveBasis}: the mix; every workload is in the table above)`,
    `  serializersVsJson  ${r.serializersVsJson.toFixed(2)}x  (new_message; geomean of all four ${r.details.serializersGeomean.toFixed(2)}x)`,
    `  ringVsArray        ${r.ringVsArray.toFixed(2)}x  (${r.details.ringVsArrayBasis}; not gated)`,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--mitata')) {
    await runWithMitata(allSuites());
    return;
  }
  const json = args.includes('--json');
  const r = await measureMicro(json ? { log: () => {} } : {});
  console.log(json ? JSON.stringify(r, null, 2) : formatMicro(r));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
