/**
 * Runs every micro benchmark and prints a table; `measureMicro()` returns the
 * ratios the CI gate checks, all measured in this one run (ours ops/s ÷
 * naive ops/s, so > 1 means ours is faster).
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
import { framerSuite, GATE_WORKLOAD } from './framer.bench';
import { ringSuite } from './ring-buffer.bench';
import { serializersSuite } from './serializers.bench';

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
  return [framerSuite(), ringSuite(), serializersSuite(), balancerSuite()];
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

/** Measures every suite; the ratios come from this one run. */
export async function measureMicro(options: MeasureMicroOptions = {}): Promise<MicroRatios> {
  const opts: MeasureOptions = { rounds: options.rounds ?? DEFAULT_MEASURE.rounds, minCpuMs: options.minCpuMs ?? DEFAULT_MEASURE.minCpuMs };
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const t0 = performance.now();
  const pairs: Record<string, MicroPairDetail> = {};
  const singles: Record<string, MicroSingleDetail> = {};
  for (const suite of allSuites()) {
    for (const pair of suite.pairs) {
      const r = await measurePair(pair, opts);
      pairs[pair.key] = pairDetail(r);
      log(`${suite.name} ${pair.title}: ours ${fmtNs(r.ours.nsPerItem)}/${r.ours.unit}, naive ${fmtNs(r.naive.nsPerItem)}/${r.naive.unit}, ${r.ratio.toFixed(2)}x [${r.roundRatios.map((x) => x.toFixed(2)).join(' ')}]`);
    }
    for (const c of suite.singles) {
      const r = await measureCase(c, opts);
      singles[c.key] = singleDetail(r);
      log(`${suite.name} ${c.name}: ${fmtNs(r.nsPerItem)}/${r.unit}`);
    }
  }
  const ratio = (key: string): number => {
    const p = pairs[key];
    if (p === undefined) throw new Error(`no pair ${key}`);
    return p.ratio;
  };
  return {
    framerVsNaive: ratio(`framer.${GATE_WORKLOAD}`),
    serializersVsJson: ratio('ser.new_message'),
    ringVsArray: geomean([ratio('ring.steady'), ratio('ring.full'), ratio('ring.burst')]),
    details: {
      clock: CLOCK,
      stat: STAT,
      rounds: opts.rounds,
      framerVsNaiveBasis: 'framer.mix',
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
    'gate ratios (ours ops/s ÷ naive ops/s):',
    `  framerVsNaive      ${r.framerVsNaive.toFixed(2)}x  (${r.details.framerVsNaiveBasis}: the mix; every workload is in the table above)`,
    `  serializersVsJson  ${r.serializersVsJson.toFixed(2)}x  (new_message; geomean of all four ${r.details.serializersGeomean.toFixed(2)}x)`,
    `  ringVsArray        ${r.ringVsArray.toFixed(2)}x  (${r.details.ringVsArrayBasis})`,
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
