import { formatBytes, formatNumber } from './format';
import type { BenchResult, NodeResult } from './result';

/** One line of the results table: a value per run, and the run / baseline ratio where it means something. */
export interface SummaryRow {
  label: string;
  values: string[];
  ratio?: string;
}

/** A harness process this busy may be what limits the figures. */
const SATURATED_PERCENT = 90;
/** Other work on the machine this busy (% of a core) during the window takes time from the run. */
const DISTURBED_PERCENT = 25;

/** The runs shown side by side: the run, then its baseline when compared. */
export function runsOf(result: BenchResult): BenchResult[] {
  return result.baseline ? [result, result.baseline] : [result];
}

export function title(result: BenchResult): string {
  const c = result.config;
  const parts = [clientsOf(c), `${c.workers} ${c.workers === 1 ? 'worker' : 'workers'}`];
  if (result.scenario === 'connect') {
    parts.push(`concurrency ${c.concurrency}`, `held ${c.duration} s`);
  } else {
    parts.push(`${c.payload} B payload`, `${c.duration} s (+${c.warmup} s warmup)`);
    if (c.rate !== undefined) parts.push(`rate ${formatNumber(c.rate)}/s`);
  }
  return `strands bench ${result.scenario}: ${parts.join(', ')}`;
}

function clientsOf(c: BenchResult['config']): string {
  if (c.roomSize !== undefined) return `room of ${formatNumber(c.roomSize)}`;
  if (c.connections !== undefined) return `${formatNumber(c.connections)} connections`;
  return `${formatNumber(c.clients ?? null)} clients`;
}

export function summaryRows(result: BenchResult): SummaryRow[] {
  const runs = runsOf(result);
  const ratios = result.vsBaseline;
  const each = (f: (r: BenchResult) => string): string[] => runs.map(f);
  const times = (n: number | null | undefined): string | undefined => (n === null || n === undefined ? undefined : `${n.toFixed(2)}x`);
  const latency = result.scenario === 'connect' ? 'handshake' : 'latency';
  const target = result.cluster ? 'brokers summed:' : 'target';
  const rows: SummaryRow[] = [
    { label: 'target', values: each((r) => `${r.target.kind}${r.target.pid === null ? '' : ` (pid ${r.target.pid})`}`) },
  ];
  if (result.scenario !== 'connect') {
    rows.push({ label: 'messages sent', values: each((r) => formatNumber(r.results.messages)) }, { label: 'deliveries', values: each((r) => formatNumber(r.results.deliveries)) });
  }
  rows.push(
    { label: 'connections', values: each((r) => formatNumber(r.results.connections)) },
    { label: `rate (${result.results.unit}/s)`, values: each((r) => formatNumber(r.results.rate)), ratio: times(ratios?.rate) },
    { label: `${latency} p50 (µs)`, values: each((r) => formatNumber(r.results.latencyUs.p50)) },
    { label: `${latency} p90 (µs)`, values: each((r) => formatNumber(r.results.latencyUs.p90)) },
    { label: `${latency} p99 (µs)`, values: each((r) => formatNumber(r.results.latencyUs.p99)), ratio: times(ratios?.p99) },
    { label: `${latency} p99.9 (µs)`, values: each((r) => formatNumber(r.results.latencyUs.p999)) },
    { label: `${latency} max (µs)`, values: each((r) => formatNumber(r.results.latencyUs.max)) },
    { label: 'lost', values: each((r) => formatNumber(r.results.lost)) },
    { label: 'errors', values: each((r) => formatNumber(r.results.errors)) },
    { label: `${target} CPU (µs per ${singular(result.results.unit)})`, values: each((r) => formatNumber(r.results.cpuUsPerOp)), ratio: times(ratios?.cpuUsPerOp) },
    { label: `${target} CPU (% of a core)`, values: each((r) => formatNumber(r.results.targetCpuPercent)) },
    result.scenario === 'connect'
      ? { label: `${target} RSS per idle connection`, values: each((r) => formatBytes(r.results.rssBytesPerConn)) }
      : { label: `${target} RSS growth under load`, values: each((r) => formatBytes(r.results.rssGrowthBytes)) },
    { label: 'harness CPU % (main; workers)', values: each((r) => `${formatNumber(r.results.harnessCpuPercent.main)}; ${r.results.harnessCpuPercent.workers.map(formatNumber).join(', ')}`) },
    { label: 'machine CPU % (all; others)', values: each((r) => (r.results.machineCpuPercent ? `${formatNumber(r.results.machineCpuPercent.all)}; ${formatNumber(r.results.machineCpuPercent.others)}` : '-')) },
    { label: 'verdict', values: each((r) => r.verdict) },
  );
  return rows;
}

/** Warnings a reader of the figures should see. */
export function notes(result: BenchResult): string[] {
  const out: string[] = [];
  for (const r of runsOf(result)) {
    const cpu = r.results.harnessCpuPercent;
    const busiest = Math.max(cpu.main, ...cpu.workers);
    if (busiest >= SATURATED_PERCENT) out.push(`${r.target.kind} run: a harness process used ${formatNumber(busiest)}% of a core; the load generator may limit these figures (more --workers, or the harness on its own core)`);
    const others = r.results.machineCpuPercent?.others ?? 0;
    if (others >= DISTURBED_PERCENT) out.push(`${r.target.kind} run: other processes used ${formatNumber(others)}% of a core during the window: the figures may be disturbed`);
    if (r.results.errorSamples.length > 0) out.push(`${r.target.kind} run errors: ${r.results.errorSamples.join('; ')}`);
    if (r.target.pid === null) out.push(`${r.target.kind} run: no --target-pid, so no CPU or memory figures`);
    if (r.target.pidNote !== undefined) out.push(`${r.target.kind} run: ${r.target.pidNote}`);
    for (const n of r.cluster?.nodes ?? []) if (n.pidNote !== undefined) out.push(`node ${n.node}: ${n.pidNote}`);
  }
  return out;
}

/** A cluster run's second table: one column per node. Empty for a single broker. */
export function nodeRows(result: BenchResult): SummaryRow[] {
  const c = result.cluster;
  if (!c) return [];
  const each = (f: (n: NodeResult) => string): string[] => c.nodes.map(f);
  const latency = result.scenario === 'connect' ? 'handshake' : 'latency';
  const over = (pick: (d: { p50: number; p99: number }) => number) => each((n) => (n.overBackendNodeUs ? formatNumber(pick(n.overBackendNodeUs)) : '-'));
  const bus = (pick: (b: NonNullable<NodeResult['bus']>) => number) => each((n) => (n.bus ? formatNumber(pick(n.bus)) : '-'));
  return [
    { label: 'node', values: each((n) => (n.node === c.backendNode ? `${n.node} (backend)` : String(n.node))) },
    { label: 'pid', values: each((n) => (n.pid === null ? '-' : String(n.pid))) },
    { label: 'clients', values: each((n) => formatNumber(n.connections)) },
    { label: result.results.unit, values: each((n) => formatNumber(n.ops)) },
    { label: `${latency} p50 (µs)`, values: each((n) => formatNumber(n.latencyUs?.p50 ?? null)) },
    { label: `${latency} p99 (µs)`, values: each((n) => formatNumber(n.latencyUs?.p99 ?? null)) },
    { label: `p50 over node ${c.backendNode}'s (µs)`, values: over((d) => d.p50) },
    { label: `p99 over node ${c.backendNode}'s (µs)`, values: over((d) => d.p99) },
    { label: `CPU (µs per ${singular(result.results.unit)})`, values: each((n) => formatNumber(n.cpuUsPerOp)) },
    { label: 'CPU (% of a core)', values: each((n) => formatNumber(n.cpuPercent)) },
    { label: 'RSS growth', values: each((n) => formatBytes(n.rssGrowthBytes)) },
    { label: 'bus frames published', values: bus((b) => b.published) },
    { label: 'bus frames received', values: bus((b) => b.received) },
  ];
}

/** A cluster run's lines under its node table: who served the backend, nats-server, the bus. Empty for a single broker. */
export function clusterLines(result: BenchResult): string[] {
  const c = result.cluster;
  if (!c) return [];
  const unit = singular(result.results.unit);
  const nats = c.nats;
  return [
    `${c.nodes.length} ${c.nodes.length === 1 ? 'node' : 'nodes'} (${c.nodes.map((n) => `${n.node}: ${n.url}`).join(', ')}), the harness's backend on node ${c.backendNode}`,
    `"over node ${c.backendNode}'s": a node's clients' latency minus node ${c.backendNode}'s clients', what crossing nodes adds`,
    nats === null
      ? 'nats-server: not measured (no pid)'
      : `nats-server (pid ${nats.pid}): ${formatFine(nats.cpuUsPerOp)} µs per ${unit}, ${formatNumber(nats.cpuPercent)}% of a core, not in the brokers' sum`,
    c.bus === null
      ? 'bus: not measured (a node without a metrics address, or not in a cluster)'
      : `bus: ${formatNumber(c.bus.publishedPerSecond)} frames/s published to NATS, ${formatNumber(c.bus.receivedPerSecond)} frames/s received from it (all nodes), ${formatNumber(c.bus.dropped)} dropped`,
  ];
}

/** Two significant digits below 1 (nats-server's share of a delivery is a fraction of a µs). */
function formatFine(n: number | null): string {
  return n !== null && Math.abs(n) < 1 ? n.toPrecision(2) : formatNumber(n);
}

function singular(unit: string): string {
  return unit.endsWith('ies') ? `${unit.slice(0, -3)}y` : unit.replace(/s$/, '');
}
