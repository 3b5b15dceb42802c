/** Number rounding, summing and formatting shared by results and reports. */

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** 12,345 for counts and large figures; 12.3 below 100, where the decimal carries information. */
export function formatNumber(n: number | null): string {
  if (n === null) return '-';
  return Math.abs(n) < 100 ? oneDecimal.format(n) : grouped.format(n);
}

export function formatBytes(n: number | null): string {
  if (n === null) return '-';
  if (Math.abs(n) >= 1024 * 1024) return `${oneDecimal.format(n / 1024 / 1024)} MiB`;
  if (Math.abs(n) >= 1024) return `${oneDecimal.format(n / 1024)} KiB`;
  return `${grouped.format(n)} B`;
}
