// The peers: Hotelling T² as the SKAB leaderboard computes it, PCA T²+Q, and a per-sensor z-score.
import type { Detector, FittedDetector, Matrix, RunScores } from "./detector.ts";
import { fCdf, fQuantile, normalCdf, normalQuantile } from "./fdist.ts";
import { columnMoments, covariance, invert, symmetricEigen } from "./linalg.ts";

/**
 * How a control limit's quantile is found: `exact` (bisection to machine precision) or `grid`,
 * as the ControlCharts code behind the SKAB leaderboard does it: the largest point of
 * `linspace(0, 15, 10000)` whose CDF is below p (a hair under the exact quantile).
 */
export type QuantileRule = "exact" | "grid";

function gridQuantile(cdf: (x: number) => number, p: number): number {
  let c = 0;
  for (let i = 0; i < 10000; i++) {
    const x = (15 * i) / 9999;
    if (cdf(x) < p) c = x;
  }
  return c;
}

/** Hotelling's T² upper control limit for `m` variables and `n` training rows at level `p`. */
export function t2Ucl(m: number, n: number, p = 0.999, rule: QuantileRule = "exact"): number {
  const c = rule === "grid" ? gridQuantile((x) => fCdf(x, m, n - m), p) : fQuantile(p, m, n - m);
  return ((m * (n - 1) * (n + 1)) / (n * (n - m))) * c;
}

/** Trailing median over `k` values; `NaN` until `k` values have been seen (pandas `rolling(k).median()`). */
export function rollingMedian(x: Float64Array, k: number): Float64Array {
  const out = new Float64Array(x.length).fill(Number.NaN);
  const buf = new Float64Array(k);
  for (let i = k - 1; i < x.length; i++) {
    buf.set(x.subarray(i - k + 1, i + 1));
    buf.sort();
    out[i] = k % 2 ? buf[(k - 1) >> 1] : 0.5 * (buf[k / 2 - 1] + buf[k / 2]);
  }
  return out;
}

function standardise(m: Matrix, mean: Float64Array, std: Float64Array, from: number): Float64Array {
  const { cols } = m;
  const rows = m.rows - from;
  const z = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++)
      z[r * cols + c] = (m.values[(from + r) * cols + c] - mean[c]) / std[c];
  }
  return z;
}

function quadratic(z: Float64Array, row: number, a: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    let t = 0;
    for (let j = 0; j < n; j++) t += a[i * n + j] * z[row * n + j];
    s += z[row * n + i] * t;
  }
  return s;
}

/** Score = filtered statistic / limit; the alarm fires above `factor` (so the score ranks, the alarm matches). */
function finish(stat: Float64Array, limit: number, factor: number): RunScores {
  const score = new Float64Array(stat.length);
  const alarm = new Uint8Array(stat.length);
  for (let i = 0; i < stat.length; i++) {
    score[i] = Number.isNaN(stat[i]) ? Number.NEGATIVE_INFINITY : stat[i] / limit;
    alarm[i] = score[i] > factor ? 1 : 0;
  }
  return { alarm, score };
}

export interface T2Options {
  /** Level of the control limit (0.999). */
  p?: number;
  /** Rows of the trailing median filter (5). */
  medianWindow?: number;
  /** Alarm above this multiple of the limit (2). */
  factor?: number;
  /** How the limit's quantile is computed (`grid`, as the leaderboard's code). */
  quantile?: QuantileRule;
}

/**
 * Hotelling T² as in the SKAB leaderboard: standardise with the training mean and population
 * std, T² with the inverse training covariance (numpy.cov), trailing median over 5 test rows,
 * alarm above 2 x UCL, UCL = m(n-1)(n+1)/(n(n-m)) F⁻¹(0.999; m, n-m).
 */
export function hotellingT2(o: T2Options = {}): Detector {
  const p = o.p ?? 0.999;
  const k = o.medianWindow ?? 5;
  const factor = o.factor ?? 2;
  return {
    name: "hotelling_t2",
    description: `Hotelling T², median of ${k} rows > ${factor} x UCL(${p})`,
    async fit(train: Matrix): Promise<FittedDetector> {
      const { mean, std } = columnMoments(train.values, train.rows, train.cols);
      const z = standardise(train, mean, std, 0);
      const inv = invert(covariance(z, train.rows, train.cols), train.cols);
      const ucl = t2Ucl(train.cols, train.rows, p, o.quantile ?? "grid");
      return {
        async scoreRun(run, testStart) {
          const zt = standardise(run, mean, std, testStart);
          const t2 = new Float64Array(run.rows - testStart);
          for (let r = 0; r < t2.length; r++) t2[r] = quadratic(zt, r, inv, run.cols);
          return finish(rollingMedian(t2, k), ucl, factor);
        },
      };
    },
  };
}

export interface PcaOptions extends T2Options {
  /** Share of the training variance the principal subspace keeps (0.85). */
  explainedVariance?: number;
  /**
   * Q's limit: `jackson-mudholkar` (theta_i = sum of residual eigenvalues^i, the textbook form) or
   * `controlcharts` (theta_i = (sum of residual eigenvalues)^i, as the ControlCharts code behind
   * the leaderboard row computes it: about 11 x the residual variance).
   */
  qLimit?: "jackson-mudholkar" | "controlcharts";
  /** A row alarms when T² or Q (`any`) or both (`both`) exceed their limits. */
  combine?: "any" | "both";
}

/** The Jackson-Mudholkar limit of Q (squared prediction error) from the residual eigenvalues. */
export function qUcl(residual: ArrayLike<number>, p = 0.999, rule: QuantileRule = "exact"): number {
  let t1 = 0;
  let t2 = 0;
  let t3 = 0;
  for (let i = 0; i < residual.length; i++) {
    const l = Math.max(residual[i], 0);
    t1 += l;
    t2 += l * l;
    t3 += l * l * l;
  }
  return qUclFromThetas(t1, t2, t3, p, rule);
}

function qUclFromThetas(t1: number, t2: number, t3: number, p: number, rule: QuantileRule): number {
  const h0 = 1 - (2 * t1 * t3) / (3 * t2 * t2);
  const c = rule === "grid" ? gridQuantile(normalCdf, p) : normalQuantile(p);
  return (
    t1 * ((c * h0 * Math.sqrt(2 * t2)) / t1 + 1 + (t2 * h0 * (h0 - 1)) / (t1 * t1)) ** (1 / h0)
  );
}

/**
 * PCA T²+Q as the ControlCharts code behind the leaderboard row defines it, as far as it can be
 * read: standardise, keep the fewest leading components that explain more than 85 % of the
 * training variance, T² on their scores (limit with m = components), Q = the squared residual
 * with the code's Q limit (see `qLimit`); each median-filtered over 5 rows; the row alarms when
 * either exceeds its limit (factor 1). Score = the larger of the two ratios. This reaches
 * 0.75 / 32.0 % / 22.7 % on SKAB against the published 0.76 / 26.62 % / 24.92 %: the exact
 * post-processing of the published row is not in the code we could read.
 */
export function pcaT2Q(o: PcaOptions = {}): Detector {
  const p = o.p ?? 0.999;
  const k = o.medianWindow ?? 5;
  const factor = o.factor ?? 1;
  const share = o.explainedVariance ?? 0.85;
  return {
    name: "pca_t2_q",
    description: `PCA (${share * 100} % variance) T² or Q, median of ${k} rows > ${factor} x limit(${p}), ${o.qLimit ?? "controlcharts"} Q limit`,
    async fit(train: Matrix): Promise<FittedDetector> {
      const F = train.cols;
      const { mean, std } = columnMoments(train.values, train.rows, F);
      const z = standardise(train, mean, std, 0);
      const { values: lambda, vectors } = symmetricEigen(covariance(z, train.rows, F), F);
      const total = lambda.reduce((a, b) => a + Math.max(b, 0), 0);
      // scikit-learn's rule: the fewest components whose cumulative share exceeds the target.
      let kept = 0;
      let cum = 0;
      while (kept < F && cum / total <= share) cum += Math.max(lambda[kept++], 0);
      const rule = o.quantile ?? "grid";
      const tUcl = t2Ucl(kept, train.rows, p, rule);
      const residual = lambda.subarray(kept);
      const sum = residual.reduce((a, b) => a + Math.max(b, 0), 0);
      const qLimit =
        kept >= F
          ? Number.POSITIVE_INFINITY
          : (o.qLimit ?? "controlcharts") === "controlcharts"
            ? qUclFromThetas(sum, sum ** 2, sum ** 3, p, rule)
            : qUcl(residual, p, rule);
      return {
        async scoreRun(run, testStart) {
          const zt = standardise(run, mean, std, testStart);
          const rows = run.rows - testStart;
          const t2 = new Float64Array(rows);
          const q = new Float64Array(rows);
          const proj = new Float64Array(F);
          for (let r = 0; r < rows; r++) {
            proj.fill(0);
            let tt = 0;
            for (let c = 0; c < kept; c++) {
              let s = 0;
              for (let j = 0; j < F; j++) s += zt[r * F + j] * vectors[j * F + c];
              tt += (s * s) / lambda[c];
              for (let j = 0; j < F; j++) proj[j] += s * vectors[j * F + c];
            }
            let qq = 0;
            for (let j = 0; j < F; j++) qq += (zt[r * F + j] - proj[j]) ** 2;
            t2[r] = tt;
            q[r] = qq;
          }
          const a = finish(rollingMedian(t2, k), tUcl, factor);
          const b = finish(rollingMedian(q, k), qLimit, factor);
          for (let i = 0; i < rows; i++) {
            if (o.combine === "both") {
              a.score[i] = Math.min(a.score[i], b.score[i]);
              a.alarm[i] = a.alarm[i] & b.alarm[i];
            } else {
              a.score[i] = Math.max(a.score[i], b.score[i]);
              a.alarm[i] = a.alarm[i] | b.alarm[i];
            }
          }
          return a;
        },
      };
    },
  };
}

/**
 * Per-sensor z-score of the current row, |x - mean| / std with the training mean and population
 * std; the row alarms when any sensor exceeds z*, the two-sided Gaussian quantile that gives the
 * row a `alpha` false-alarm probability over all sensors (Bonferroni: alpha / sensors each).
 * With alpha = 0.001 it matches the T² limit's level (0.999).
 */
export function zScore(alpha = 0.001): Detector {
  return {
    name: "zscore",
    description: `max |z| over sensors > Φ⁻¹(1 - ${alpha}/(2·sensors))`,
    async fit(train: Matrix): Promise<FittedDetector> {
      const F = train.cols;
      const { mean, std } = columnMoments(train.values, train.rows, F);
      const zStar = normalQuantile(1 - alpha / (2 * F));
      return {
        async scoreRun(run, testStart) {
          const rows = run.rows - testStart;
          const score = new Float64Array(rows);
          const alarm = new Uint8Array(rows);
          for (let r = 0; r < rows; r++) {
            let m = 0;
            for (let c = 0; c < F; c++) {
              m = Math.max(m, Math.abs(run.values[(testStart + r) * F + c] - mean[c]) / std[c]);
            }
            score[r] = m;
            alarm[r] = m > zStar ? 1 : 0;
          }
          return { alarm, score };
        },
      };
    },
  };
}
