/** Number formatting for the report: percentages, rates, sizes. */
export const fmt = {
  pct: (x: number, digits = 1) => (Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : 'n/a'),
  num: (x: number, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a'),
  /** A difference of two shares, in percentage points. */
  points: (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} percentage points` : 'n/a'),
  ms: (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'n/a'),
  s: (ms: number) => `${(ms / 1000).toFixed(1)} s`,
  mb: (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`,
};
