import * as hdr from 'hdr-histogram-js';
import { round } from './format';

export type Histogram = hdr.Histogram;

/** Latencies in µs, as reported everywhere in the harness. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** µs, 3 significant digits; grows past a minute instead of throwing. */
export function createHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
}

/** Histograms cross process boundaries (worker -> harness) as compressed base64. */
export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function mergeHistograms(encoded: readonly string[]): Histogram {
  const total = createHistogram();
  for (const text of encoded) total.add(hdr.decodeFromCompressedBase64(text));
  return total;
}

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  };
}

/**
 * [percentile, µs] pairs for the classic HdrHistogram plot, evenly spaced on
 * a log(1 / (1 - p)) axis up to where the sample count still resolves them,
 * ending with the maximum at 100.
 */
export function percentileCurve(h: Histogram): Array<[number, number]> {
  const points: Array<[number, number]> = [];
  if (h.totalCount === 0) return points;
  const nines = Math.min(6, Math.log10(h.totalCount));
  for (let x = 0; x < nines; x += 0.05) {
    const p = 100 * (1 - 10 ** -x);
    points.push([round(p, 6), h.getValueAtPercentile(p)]);
  }
  points.push([100, h.maxValue]);
  return points;
}
