import { formatNumber } from './format';
import { overallVerdict } from './report-text';
import type { BenchResult } from './result';
import { notes, runsOf, summaryRows, title } from './summary';

/** The results as one self-contained HTML page: tables and inline SVG plots, nothing fetched. */
export function renderHtml(result: BenchResult): string {
  const runs = runsOf(result);
  const rows = summaryRows(result);
  const head = `<tr><th></th>${runs.map((r) => `<th>${esc(r.target.kind)}</th>`).join('')}${result.baseline ? `<th>${esc(result.target.kind)}/baseline</th>` : ''}</tr>`;
  const body = rows
    .map((row) => `<tr><th>${esc(row.label)}</th>${row.values.map((v) => `<td>${esc(v)}</td>`).join('')}${result.baseline ? `<td>${esc(row.ratio ?? '')}</td>` : ''}</tr>`)
    .join('\n');
  const warnings = notes(result);
  const latencyName = result.scenario === 'connect' ? 'Handshake latency' : 'Latency';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(title(result))}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; }
th { text-align: left; font-weight: 600; }
td { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-size: 1.2em; font-weight: 600; }
.ok { color: #17803d; } .bad { color: #b3261e; }
svg { display: block; margin: 0.5em 0 2em; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
pre { background: #f6f6f6; padding: 1em; overflow: auto; }
</style>
</head>
<body>
<h1>${esc(title(result))}</h1>
<p>Target <code>${esc(result.target.url)}</code>, started ${esc(result.startedAt)} on ${esc(result.machine.cpuModel)} (${result.machine.cores} cores), Node.js ${esc(result.machine.node)}.</p>
<p class="verdict ${overallVerdict(result) === 'OK' ? 'ok' : 'bad'}">Verdict: ${esc(overallVerdict(result))}</p>
<table>
${head}
${body}
</table>
${warnings.length > 0 ? `<ul>${warnings.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h2>${latencyName} by percentile</h2>
${latencyChart(runs)}
<h2>${esc(result.results.unit)} per second${result.scenario === 'connect' ? ' while opening' : ''}</h2>
${perSecondChart(runs)}
<h2>Configuration</h2>
<pre>${esc(JSON.stringify(result.config, null, 2))}</pre>
</body>
</html>
`;
}

const COLORS = ['#1f6fb4', '#e8740c'];
const W = 760;
const H = 320;
/** Margins around the plot's frame; the legend sits in the top one, outside the plot. */
const M = { left: 70, right: 45, top: 34, bottom: 45 };
/** Space inside the frame around the data, so that no line is drawn over the frame. */
const INSET = 8;
/** Width of one legend entry: a run's kind is a short word (broker, baseline). */
const LEGEND_STEP = 110;
/** The rate axis ends at least this far above the highest rate. */
const HEADROOM = 1.1;

interface Series {
  name: string;
  points: Array<[number, number]>;
}

interface Tick {
  at: number;
  label: string;
}

/** Latency against percentile on the usual HdrHistogram axes: x = log10(1 / (1 - p)), y logarithmic. */
function latencyChart(runs: BenchResult[]): string {
  const series = runs.map((r) => {
    const points: Array<[number, number]> = [];
    for (const [p, us] of r.results.latencyPercentiles) {
      // The maximum (p = 100) sits above the last finite percentile.
      const x = p >= 100 ? (points[points.length - 1]?.[0] ?? 0) : -Math.log10(1 - p / 100);
      points.push([x, Math.max(1, us)]);
    }
    return { name: r.target.kind, points };
  });
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return '<p>No latency samples.</p>';
  const maxX = Math.max(1, Math.ceil(Math.max(...all.map((p) => p[0]))));
  const lo = Math.floor(Math.log10(Math.min(...all.map((p) => p[1]))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all.map((p) => p[1])))));
  const xTicks: Tick[] = [];
  for (let x = 0; x <= maxX; x++) xTicks.push({ at: x, label: x === 0 ? '0%' : `${(100 - 100 / 10 ** x).toFixed(Math.max(0, x - 2))}%` });
  const yTicks: Tick[] = [];
  for (let e = lo; e <= hi; e++) yTicks.push({ at: e, label: durationLabel(10 ** e) });
  const logSeries = series.map((s) => ({ name: s.name, points: s.points.map(([x, y]): [number, number] => [x, Math.log10(y)]) }));
  return chart(logSeries, [0, maxX], [lo, hi], xTicks, yTicks, 'percentile', 'latency');
}

function perSecondChart(runs: BenchResult[]): string {
  const series = runs.map((r) => ({ name: r.target.kind, points: r.results.perSecond.map((v, i): [number, number] => [i + 1, v]) }));
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return '<p>No per-second figures.</p>';
  const maxX = Math.max(2, ...all.map((p) => p[0]));
  const step = niceStep((HEADROOM * Math.max(1, ...all.map((p) => p[1]))) / 5);
  const xStep = Math.max(1, Math.ceil(maxX / 15));
  const xTicks: Tick[] = [];
  for (let x = 1; x <= maxX; x += xStep) xTicks.push({ at: x, label: String(x) });
  const yTicks: Tick[] = [];
  for (let i = 0; i <= 5; i++) yTicks.push({ at: step * i, label: formatNumber(step * i) });
  return chart(series, [1, maxX], [0, 5 * step], xTicks, yTicks, 'second of the measured window', 'per second');
}

/** An SVG line chart of `series` over the given data ranges, with a legend. */
function chart(series: Series[], [x0, x1]: [number, number], [y0, y1]: [number, number], xTicks: Tick[], yTicks: Tick[], xLabel: string, yLabel: string): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + INSET + (x1 === x0 ? 0 : ((x - x0) / (x1 - x0)) * (pw - 2 * INSET));
  const sy = (y: number): number => M.top + ph - INSET - (y1 === y0 ? 0 : ((y - y0) / (y1 - y0)) * (ph - 2 * INSET));
  const f = (n: number): string => n.toFixed(1);
  const parts: string[] = [`<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(yLabel)} by ${esc(xLabel)}">`];
  for (const t of yTicks) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${f(sy(t.at))}" y2="${f(sy(t.at))}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${M.left - 6}" y="${f(sy(t.at) + 4)}" text-anchor="end">${esc(t.label)}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line x1="${f(sx(t.at))}" x2="${f(sx(t.at))}" y1="${M.top}" y2="${M.top + ph}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${f(sx(t.at))}" y="${M.top + ph + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  }
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${M.left + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text x="14" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${M.top + ph / 2})">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const d = s.points.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${d}"/>`);
    // One row above the frame, an entry every LEGEND_STEP pixels.
    const lx = M.left + i * LEGEND_STEP;
    const ly = M.top - 12;
    parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 26}" y="${ly}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function durationLabel(us: number): string {
  if (us >= 1e6) return `${formatNumber(us / 1e6)} s`;
  if (us >= 1e3) return `${formatNumber(us / 1e3)} ms`;
  return `${formatNumber(us)} µs`;
}

/** The smallest of 1, 2, 2.5 or 5 times a power of ten that is >= n: a tick step whose labels read easily. */
function niceStep(n: number): number {
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5]) if (m * p >= n) return m * p;
  return 10 * p;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
