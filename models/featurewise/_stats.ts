// Small numeric helpers shared by the per-feature fits.

/** Median of `values` (copied, not modified). */
export function median(values: Float64Array): number {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) >> 1] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/** Step size of SGD step `s` over `n` samples per epoch: 1/sqrt decay from 0.05. */
export function sgdSchedule(s: number, n: number): number {
  return 0.05 / Math.sqrt(1 + s / n);
}
