import type { ErrorTally } from './error-tally';
import { round } from './format';
import { percentileCurve, summarize, type Histogram, type LatencySummary } from './histogram';
import type { BenchOptions, ScenarioName, ScenarioOption } from './options';
import { machineInfo, type MachineInfo, type TargetUsage } from './proc-stats';
import type { ScenarioSpec } from './scenarios';

/** What a scenario driver measured, before it is turned into a BenchResult. */
export interface Measurement {
  /** Sent by clients or published, with an intended time in the window. */
  messages: number;
  /** Such messages received by clients. */
  deliveries: number;
  /** Clients connected. */
  connections: number;
  /** What the rate counts and the target's CPU is divided by. */
  ops: number;
  windowUs: number;
  latency: Histogram;
  lost: number;
  errors: ErrorTally;
  perSecond: number[];
  target: TargetUsage | undefined;
  /** CPU time of the harness process and of each worker over the window. */
  harnessCpuUs: { main: number; workers: number[] };
}

/** The options a run used: those every run uses, and those of its scenario (ScenarioSpec.options) only. */
export interface BenchConfig extends Partial<Record<ScenarioOption, number>> {
  duration: number;
  /** Worker processes started (no more than there are clients). */
  workers: number;
  concurrency: number;
}

/** The JSON written by --json: one run. Fields are only ever added. */
export interface BenchResult {
  scenario: ScenarioName;
  target: {
    kind: 'broker' | 'baseline';
    url: string;
    tcp: string | null;
    /** The process measured. */
    pid: number | null;
    /** Why `pid` is not the --target-pid given (npm's, a shell's), when it is not. */
    pidNote?: string;
  };
  config: BenchConfig;
  startedAt: string;
  machine: MachineInfo;
  results: {
    messages: number;
    deliveries: number;
    connections: number;
    /** `unit` per second over the measured window. */
    rate: number;
    unit: string;
    latencyUs: LatencySummary;
    /** [percentile, µs], for plotting the latency distribution. */
    latencyPercentiles: Array<[number, number]>;
    lost: number;
    errors: number;
    errorSamples: string[];
    /** Target CPU µs per `unit`; null without a target pid. */
    cpuUsPerOp: number | null;
    /** Target CPU over the window, % of one core. */
    targetCpuPercent: number | null;
    /** Target RSS growth from before the clients connected to the end of the window (connect: of the hold). */
    rssGrowthBytes: number | null;
    /** connect only: rssGrowthBytes per idle connection held. */
    rssBytesPerConn: number | null;
    harnessCpuPercent: { main: number; workers: number[] };
    /** `unit` per second of the window (messages bucketed by send time). */
    perSecond: number[];
  };
  /** "OK", or what went wrong: "LOST 12 messages", "3 errors". */
  verdict: string;
  /** With --compare: the same scenario against the bare uWebSockets.js server. */
  baseline?: BenchResult;
  /** With --compare: this run's figure divided by the baseline's. */
  vsBaseline?: { rate: number | null; p99: number | null; cpuUsPerOp: number | null };
}

export function buildResult(o: BenchOptions, spec: ScenarioSpec, workers: number, startedAt: string, m: Measurement, targetNote?: string): BenchResult {
  const windowS = m.windowUs / 1e6;
  const lost = m.lost;
  const errors = m.errors.count;
  const percent = (us: number): number => round((100 * us) / m.windowUs, 1);
  return {
    scenario: o.scenario,
    target: {
      kind: o.baseline ? 'baseline' : 'broker',
      url: o.url,
      tcp: o.baseline ? null : `${o.tcp.host}:${o.tcp.port}`,
      pid: o.targetPid ?? null,
      ...(targetNote === undefined ? {} : { pidNote: targetNote }),
    },
    config: usedConfig(o, spec, workers),
    startedAt,
    machine: machineInfo(),
    results: {
      messages: m.messages,
      deliveries: m.deliveries,
      connections: m.connections,
      rate: windowS > 0 ? round(m.ops / windowS, 1) : 0,
      unit: spec.unit,
      latencyUs: summarize(m.latency),
      latencyPercentiles: percentileCurve(m.latency),
      lost,
      errors,
      errorSamples: m.errors.samples,
      cpuUsPerOp: m.target && m.ops > 0 ? round(m.target.cpuUs / m.ops, 3) : null,
      targetCpuPercent: m.target ? round((100 * m.target.cpuUs) / m.target.wallUs, 1) : null,
      rssGrowthBytes: m.target ? m.target.rssDeltaBytes : null,
      // Under traffic RSS also holds buffers and garbage; only idle connections give a figure per connection.
      rssBytesPerConn: spec.role === 'idle' && m.target && m.connections > 0 ? Math.round(m.target.rssDeltaBytes / m.connections) : null,
      harnessCpuPercent: { main: percent(m.harnessCpuUs.main), workers: m.harnessCpuUs.workers.map(percent) },
      perSecond: m.perSecond,
    },
    verdict: verdict(lost, errors),
  };
}

function usedConfig(o: BenchOptions, spec: ScenarioSpec, workers: number): BenchConfig {
  const config: BenchConfig = { duration: o.duration, workers, concurrency: o.concurrency };
  for (const key of spec.options) config[key] = o[key];
  return config;
}

export function verdict(lost: number, errors: number): string {
  const problems: string[] = [];
  if (lost > 0) problems.push(`LOST ${lost} ${lost === 1 ? 'message' : 'messages'}`);
  if (errors > 0) problems.push(`${errors} ${errors === 1 ? 'error' : 'errors'}`);
  return problems.length === 0 ? 'OK' : problems.join(', ');
}

/** The run with its baseline run attached, and the ratios between them. */
export function withBaseline(run: BenchResult, baseline: BenchResult): BenchResult {
  const ratio = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? round(a / b, 3) : null);
  return {
    ...run,
    baseline,
    vsBaseline: {
      rate: ratio(run.results.rate, baseline.results.rate),
      p99: ratio(run.results.latencyUs.p99, baseline.results.latencyUs.p99),
      cpuUsPerOp: ratio(run.results.cpuUsPerOp, baseline.results.cpuUsPerOp),
    },
  };
}
