// Per-feature tail calibration: a generalised Pareto fit to held-out exceedances, mapped to a score.

/** What the tail fit of one feature found. */
export interface TailFit {
  /** Threshold of the exceedances. */
  u: number;
  /** Fraction of held-out values above `u`. */
  pu: number;
  /** Shape used (fitted shape plus the safety margin, at least `XI_FLOOR`). */
  xi: number;
  /** Fitted shape before the margin. */
  xiHat: number;
  beta: number;
  exceedances: number;
}

/** Smallest shape used: makes the map exponential in practice while staying float32-friendly. */
export const XI_FLOOR = 0.01;
const XI_MAX = 1.5;
const GRID = 64;

/**
 * Fits `P(s > u + t) = pu * (1 + xi t / beta)^(-1/xi)` to the largest held-out values by profile
 * maximum likelihood (Grimshaw's one-parameter reduction), then adds `margin` standard errors to
 * the shape so that the extrapolation to tiny probabilities errs on the side of fewer alarms.
 * `values` is sorted in place.
 */
export function fitTail(values: Float64Array, tailFraction: number, margin: number): TailFit {
  const n = values.length;
  values.sort();
  let k = Math.max(20, Math.ceil(tailFraction * n));
  k = Math.min(k, n - 1);
  let u = values[n - k - 1];
  // Quantised statistics tie at the threshold: lower it until enough values lie strictly above.
  let idx = n - k - 1;
  const minAbove = Math.min(10, Math.floor(n / 4));
  while (idx > 0 && countAbove(values, u) < minAbove) {
    idx--;
    u = values[idx];
  }
  const ys: number[] = [];
  for (let i = 0; i < n; i++) if (values[i] > u) ys.push(values[i] - u);
  const m = ys.length;
  if (m === 0) {
    // A constant statistic: anything above it is unseen; use a tiny relative scale.
    return {
      u,
      pu: 1 / n,
      xi: XI_FLOOR,
      xiHat: 0,
      beta: Math.max(Math.abs(u) * 1e-3, 1e-9),
      exceedances: 0,
    };
  }
  let mean = 0;
  for (const y of ys) mean += y;
  mean /= m;
  // Exponential (xi = 0) is the reference; then a log grid over theta = xi / beta.
  let bestXi = 0;
  let bestBeta = mean;
  let bestL = -m * Math.log(mean) - m;
  for (let g = 0; g < GRID; g++) {
    const theta = 10 ** (-3 + (6 * g) / (GRID - 1)) / mean;
    let sumLog = 0;
    for (const y of ys) sumLog += Math.log1p(theta * y);
    const xi = sumLog / m;
    if (xi <= 0 || xi > XI_MAX) continue;
    const beta = xi / theta;
    const l = -m * Math.log(beta) - (1 + 1 / xi) * sumLog;
    if (l > bestL) {
      bestL = l;
      bestXi = xi;
      bestBeta = beta;
    }
  }
  const xi = Math.max(XI_FLOOR, bestXi + (margin * (1 + bestXi)) / Math.sqrt(m));
  return { u, pu: m / n, xi, xiHat: bestXi, beta: bestBeta, exceedances: m };
}

function countAbove(sorted: Float64Array, u: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return sorted.length - lo;
}

/**
 * Coefficients of `score = clip(a * ln(1 + k (s - u)) + b, 0, 1)`, equal to
 * `clip(threshold * ln p / ln pTarget, 0, 1)`: the score is `threshold` exactly where the fitted
 * tail probability is `pTarget`.
 */
export function scoreMap(
  fit: TailFit,
  pTarget: number,
  threshold: number,
): { u: number; k: number; a: number; b: number } {
  const c = threshold / Math.log(pTarget);
  return { u: fit.u, k: fit.xi / fit.beta, a: -c / fit.xi, b: c * Math.log(fit.pu) };
}

/** Calibrated score of a statistic, in float64 (the reference for the ONNX graph). */
export function tailScore(s: number, u: number, k: number, a: number, b: number): number {
  const logp = Math.log(Math.max(1 + k * (s - u), 1e-30));
  const score = a * logp + b;
  return score < 0 ? 0 : Math.min(score, 1);
}
