import { formatBytes, formatNumber } from './format';
import type { BenchResult } from './result';

/** One line of the results table: a value per run, and the run / baseline ratio where it means something. */
export interface SummaryRow {
  label: string;
  values: string[];
  ratio?: string;
}

/** A harness process this busy may be what limits the figures. */
const SATURATED_PERCENT = 90;

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
    { label: `target CPU (µs per ${singular(result.results.unit)})`, values: each((r) => formatNumber(r.results.cpuUsPerOp)), ratio: times(ratios?.cpuUsPerOp) },
    { label: 'target CPU (% of a core)', values: each((r) => formatNumber(r.results.targetCpuPercent)) },
    result.scenario === 'connect'
      ? { label: 'target RSS per idle connection', values: each((r) => formatBytes(r.results.rssBytesPerConn)) }
      : { label: 'target RSS growth under load', values: each((r) => formatBytes(r.results.rssGrowthBytes)) },
    { label: 'harness CPU % (main; workers)', values: each((r) => `${formatNumber(r.results.harnessCpuPercent.main)}; ${r.results.harnessCpuPercent.workers.map(formatNumber).join(', ')}`) },
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
    if (r.results.errorSamples.length > 0) out.push(`${r.target.kind} run errors: ${r.results.errorSamples.join('; ')}`);
    if (r.target.pid === null) out.push(`${r.target.kind} run: no --target-pid, so no CPU or memory figures`);
    if (r.target.pidNote !== undefined) out.push(`${r.target.kind} run: ${r.target.pidNote}`);
  }
  return out;
}

function singular(unit: string): string {
  return unit.endsWith('ies') ? `${unit.slice(0, -3)}y` : unit.replace(/s$/, '');
}
