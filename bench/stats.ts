/** Small statistics helpers for the benchmarks. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}
export const median = (xs: number[]) => quantile(xs, 0.5);
export const p90 = (xs: number[]) => quantile(xs, 0.9);
export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

export interface Row {
  name: string;
  figures: string;
  goal?: string;
  ok?: boolean;
}
export function printRows(rows: Row[]) {
  console.log('\n=== summary ===');
  for (const r of rows) {
    const verdict = r.ok === undefined ? '' : r.ok ? '  [meets goal]' : '  [MISSES goal]';
    console.log(`${r.name}: ${r.figures}${r.goal ? `  (goal ${r.goal})` : ''}${verdict}`);
  }
}
