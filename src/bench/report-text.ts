import type { BenchResult } from './result';
import { clusterLines, nodeRows, notes, runsOf, summaryRows, title, type SummaryRow } from './summary';

/** The results as a plain-text table for a terminal: one column per run, then the ratio to the baseline. */
export function formatText(result: BenchResult): string {
  const header = { label: '', values: runsOf(result).map((r) => r.target.kind), ratio: result.baseline ? `${result.target.kind}/baseline` : undefined };
  const lines = [title(result), `target ${result.target.url}`, '', ...tableLines([header, ...summaryRows(result)])];
  const nodes = nodeRows(result);
  if (nodes.length > 0) {
    lines.push('', ...tableLines(nodes), '', ...clusterLines(result));
  }
  const warnings = notes(result);
  if (warnings.length > 0) lines.push('', ...warnings.map((n) => `note: ${n}`));
  lines.push('', `verdict: ${overallVerdict(result)}`);
  return lines.join('\n') + '\n';
}

/** Rows as aligned columns: labels left, values right. */
function tableLines(table: SummaryRow[]): string[] {
  const labelWidth = Math.max(...table.map((r) => r.label.length));
  const valueWidth = Math.max(12, ...table.flatMap((r) => r.values.map((v) => v.length)));
  return table.map((row) => {
    const cells = row.values.map((v) => v.padStart(valueWidth)).join('  ');
    return `${row.label.padEnd(labelWidth)}  ${cells}${row.ratio ? `  ${row.ratio.padStart(valueWidth)}` : ''}`.trimEnd();
  });
}

/** OK only when every run was. */
export function overallVerdict(result: BenchResult): string {
  const bad = runsOf(result).filter((r) => r.verdict !== 'OK');
  if (bad.length === 0) return 'OK';
  return bad.map((r) => (result.baseline ? `${r.target.kind}: ${r.verdict}` : r.verdict)).join('; ');
}
