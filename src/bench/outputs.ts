import { writeFileSync } from 'node:fs';
import { renderHtml } from './report-html';
import type { BenchResult } from './result';

/** Writes --json (the BenchResult, pretty-printed) and --report (the HTML page) where asked. */
export function writeOutputs(result: BenchResult, files: { json?: string; report?: string }): void {
  if (files.json) writeFileSync(files.json, JSON.stringify(result, null, 2) + '\n');
  if (files.report) writeFileSync(files.report, renderHtml(result));
}
