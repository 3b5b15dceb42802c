import type { BusCounts } from './bus-counters';
import type { ErrorTally } from './error-tally';
import type { MeasuredNode } from './harness';
import { round, sum } from './format';
import { percentileCurve, summarize, type Histogram, type LatencySummary } from './histogram';
import { backendTcp, type BenchOptions, type ScenarioName, type ScenarioOption } from './options';
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
  /** Per node of the target, in URL order (one for a single broker). */
  nodes: NodeMeasurement[];
  /** The cluster's nats-server over the window, when its pid is known. */
  nats: TargetUsage | undefined;
  /** CPU time every process on the machine used over the window (all cores). */
  machineCpuUs: number;
  /** CPU time of the harness process and of each worker over the window. */
  harnessCpuUs: { main: number; workers: number[] };
}

/** What one node of the target did, and what its clients measured. */
export interface NodeMeasurement {
  /** Clients connected through it. */
  connections: number;
  /** Ops its clients counted (the unit's). */
  ops: number;
  latency: Histogram;
  /** Its process over the window; undefined without its pid. */
  usage: TargetUsage | undefined;
  /** Its bus counters' growth over the window; undefined without its metrics address. */
  bus: BusCounts | undefined;
}

/** A process's CPU over the window, per op and as % of one core, and its RSS growth. */
export interface ProcessFigures {
  pid: number | null;
  cpuUsPerOp: number | null;
  cpuPercent: number | null;
  rssGrowthBytes: number | null;
}

/** One node of a cluster in a result. */
export interface NodeResult extends ProcessFigures {
  /** 1-based, in URL order. */
  node: number;
  url: string;
  /** Why `pid` is not the one given, when it is not. */
  pidNote?: string;
  /** Clients connected through it. */
  connections: number;
  /** Ops (the unit's) counted by its clients; its CPU is divided by these. */
  ops: number;
  /** Null when it had no clients. */
  latencyUs: LatencySummary | null;
  /** Its clients' latency minus the backend node's clients', at p50 and p99: what crossing nodes adds. Null on the backend node, or when either has no clients. */
  overBackendNodeUs: { p50: number; p99: number } | null;
  /** Its bus frames over the window; null without its metrics address. */
  bus: BusCounts | null;
}

/** With several nodes (or a nats-server to measure): each node, nats-server, the bus. */
export interface ClusterResult {
  /** The node the harness's backend was on. */
  backendNode: number;
  nodes: NodeResult[];
  /** nats-server's figures (per op: per op of the whole run); null without its pid. */
  nats: ProcessFigures | null;
  /** Bus frames per second over the window, summed over the nodes; null unless every node's metrics were read. */
  bus: { publishedPerSecond: number; receivedPerSecond: number; dropped: number } | null;
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
    /** Target CPU µs per `unit` (a cluster's: every node's CPU summed); null without a target pid (for every node). */
    cpuUsPerOp: number | null;
    /** Target CPU over the window, % of one core (a cluster's: summed over the nodes). */
    targetCpuPercent: number | null;
    /** Target RSS growth from before the clients connected to the end of the window (connect: of the hold); a cluster's: summed. */
    rssGrowthBytes: number | null;
    /** connect only: rssGrowthBytes per idle connection held. */
    rssBytesPerConn: number | null;
    harnessCpuPercent: { main: number; workers: number[] };
    /**
     * The whole machine's CPU over the window, % of one core: `all` processes, and `others`,
     * those that are not the target, nats-server or the harness (other work on a shared machine,
     * and time the hypervisor gave to other guests). Only with every target process measured.
     */
    machineCpuPercent: { all: number; others: number } | null;
    /** `unit` per second of the window (messages bucketed by send time). */
    perSecond: number[];
  };
  /** "OK", or what went wrong: "LOST 12 messages", "3 errors". */
  verdict: string;
  /** With several nodes (--url more than once, or --spawn --nodes N): each node's figures, nats-server's, the bus's. */
  cluster?: ClusterResult;
  /** With --compare: the same scenario against the bare uWebSockets.js server. */
  baseline?: BenchResult;
  /** With --compare: this run's figure divided by the baseline's. */
  vsBaseline?: { rate: number | null; p99: number | null; cpuUsPerOp: number | null };
}

export function buildResult(o: BenchOptions, spec: ScenarioSpec, workers: number, startedAt: string, m: Measurement, nodes: readonly MeasuredNode[]): BenchResult {
  const windowS = m.windowUs / 1e6;
  const lost = m.lost;
  const errors = m.errors.count;
  const percent = (us: number): number => percentOfWindow(m, us);
  const backend = nodes[o.backendNode - 1]!;
  const target = sumUsages(m.nodes.map((n) => n.usage));
  const targetFigures = processFigures(backend.pid, target, m.ops);
  const tcp = backendTcp(o);
  return {
    scenario: o.scenario,
    target: {
      kind: o.baseline ? 'baseline' : 'broker',
      url: backend.url,
      tcp: o.baseline ? null : `${tcp.host}:${tcp.port}`,
      pid: backend.pid ?? null,
      ...(nodes.length > 1 || backend.pidNote === undefined ? {} : { pidNote: backend.pidNote }),
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
      cpuUsPerOp: targetFigures.cpuUsPerOp,
      targetCpuPercent: targetFigures.cpuPercent,
      rssGrowthBytes: targetFigures.rssGrowthBytes,
      // Under traffic RSS also holds buffers and garbage; only idle connections give a figure per connection.
      rssBytesPerConn: spec.role === 'idle' && target && m.connections > 0 ? Math.round(target.rssDeltaBytes / m.connections) : null,
      harnessCpuPercent: { main: percent(m.harnessCpuUs.main), workers: m.harnessCpuUs.workers.map(percent) },
      machineCpuPercent: target && (o.natsPid === undefined || m.nats) ? machineShares(m, target) : null,
      perSecond: m.perSecond,
    },
    verdict: verdict(lost, errors),
    ...(nodes.length > 1 || o.natsPid !== undefined ? { cluster: clusterResult(o, m, nodes, windowS) } : {}),
  };
}

function clusterResult(o: BenchOptions, m: Measurement, nodes: readonly MeasuredNode[], windowS: number): ClusterResult {
  const backendLatency = m.nodes[o.backendNode - 1]!.ops > 0 ? summarize(m.nodes[o.backendNode - 1]!.latency) : undefined;
  const bus = m.nodes.map((n) => n.bus);
  const sumBus = (key: keyof BusCounts): number => bus.reduce((total, b) => total + (b?.[key] ?? 0), 0);
  return {
    backendNode: o.backendNode,
    nodes: nodes.map((node, i): NodeResult => {
      const n = m.nodes[i]!;
      const latencyUs = n.ops > 0 ? summarize(n.latency) : null;
      const crossed = i !== o.backendNode - 1 && latencyUs !== null && backendLatency !== undefined;
      return {
        node: i + 1,
        url: node.url,
        ...(node.pidNote === undefined ? {} : { pidNote: node.pidNote }),
        ...processFigures(node.pid, n.usage, n.ops),
        connections: n.connections,
        ops: n.ops,
        latencyUs,
        overBackendNodeUs: crossed ? { p50: latencyUs.p50 - backendLatency.p50, p99: latencyUs.p99 - backendLatency.p99 } : null,
        bus: n.bus ?? null,
      };
    }),
    nats: o.natsPid === undefined ? null : processFigures(o.natsPid, m.nats, m.ops),
    bus: windowS > 0 && bus.every((b) => b !== undefined) ? { publishedPerSecond: round(sumBus('published') / windowS, 1), receivedPerSecond: round(sumBus('received') / windowS, 1), dropped: sumBus('dropped') } : null,
  };
}

/** The machine's CPU over the window, all of it and what was not the run's own, % of one core. */
function machineShares(m: Measurement, target: TargetUsage): { all: number; others: number } {
  const ours = target.cpuUs + (m.nats?.cpuUs ?? 0) + m.harnessCpuUs.main + sum(m.harnessCpuUs.workers);
  return { all: percentOfWindow(m, m.machineCpuUs), others: percentOfWindow(m, Math.max(0, m.machineCpuUs - ours)) };
}

/** CPU time as % of one core over the measured window. */
function percentOfWindow(m: Measurement, us: number): number {
  return round((100 * us) / m.windowUs, 1);
}

/** CPU per op, % of a core and RSS growth of one process (or of several, summed); nulls without a usage. */
function processFigures(pid: number | undefined, usage: TargetUsage | undefined, ops: number): ProcessFigures {
  return {
    pid: pid ?? null,
    cpuUsPerOp: usage && ops > 0 ? round(usage.cpuUs / ops, 3) : null,
    cpuPercent: usage ? round((100 * usage.cpuUs) / usage.wallUs, 1) : null,
    rssGrowthBytes: usage ? usage.rssDeltaBytes : null,
  };
}

/** Several processes as one: CPU and RSS growth summed, over the longest wall time; undefined unless every one was measured. */
function sumUsages(usages: ReadonlyArray<TargetUsage | undefined>): TargetUsage | undefined {
  if (usages.length === 0 || usages.some((u) => u === undefined)) return undefined;
  const all = usages as TargetUsage[];
  return { cpuUs: sum(all.map((u) => u.cpuUs)), wallUs: Math.max(...all.map((u) => u.wallUs)), rssDeltaBytes: sum(all.map((u) => u.rssDeltaBytes)) };
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
