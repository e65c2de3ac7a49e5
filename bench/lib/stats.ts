/**
 * The benchmarks' one statistics module: every figure in docs/BENCHMARKS.md is a percentile or a
 * median computed here, so two benchmarks never disagree on what "p99" or "median" means.
 */

/** Percentile by nearest rank, `p` in 0..100; NaN when empty. Does not modify `xs`. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The median: the middle value, or the mean of the two middle ones; NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
