// Fits the default model for one feature: robust whitening of the window's DCT, SVDD centre by SGD.

import { median, sgdSchedule } from "./_stats.ts";
import type { WindowSplit } from "./split.ts";
import { fitTail, type TailFit } from "./tail.ts";

export interface SvddFeatureFit {
  loc: number;
  /** 1 / robust scale of the frame-to-frame changes (the agitation statistic's unit). */
  invScaleD: number;
  invScale: Float64Array;
  center: Float64Array;
  radius2: number;
  /** Tails of the level, dynamics, quiet and agitation statistics. */
  tails: TailFit[];
  /** Excess kurtosis of the non-zero frame-to-frame changes (tail-heaviness evidence). */
  kurtosis: number;
  heavy: boolean;
  /**
   * False when normal data already looks stuck: a quantised sensor (see QUANTISED_ZERO_SHARE) or
   * one whose normal windows sit still. The quiet score (the stuck check) is then off.
   */
  quietEnabled: boolean;
  /**
   * True for heavy-tailed sensors with continuous readings: the only ones whose noise bursts the
   * dynamics statistic cannot see (its tail must be assumed heavy) and the agitation statistic
   * can. Elsewhere it adds nothing and is off (quantised readings make its tail a staircase no
   * tail model fits).
   */
  agitationEnabled: boolean;
}

/** Excess kurtosis above which a sensor's changes are treated as heavy-tailed. */
export const HEAVY_KURTOSIS = 0.5;
/** Smallest tail shape assumed for heavy-tailed sensors (a squared Student-t with about 3 degrees of freedom). */
export const HEAVY_MIN_XI = 0.6;

/**
 * Smallest tail shape assumed for a heavy-tailed sensor's agitation statistic. It is the smallest
 * of W - 1 squared changes, so one wild reading does not make it large: for independent changes
 * its tail is W - 1 times lighter than one change's. But one shock moves two consecutive changes,
 * so two independent shocks are assumed to be enough: HEAVY_MIN_XI / 2.
 */
export const HEAVY_MIN_XI_AGITATION = HEAVY_MIN_XI / 2;

/**
 * Share of a sensor's frame-to-frame changes that may be exactly zero before it counts as
 * quantised (readings in steps, so it may legitimately sit still: its quiet and agitation
 * statistics are off). Continuous readings repeat exactly now and then by chance (float32
 * rounding, 7 significant digits in JSON, a historian's storage): at this share a window of the
 * default 5 frames is flat by chance about once in 10^8 (four zero changes in a row), far below
 * any false-alarm budget, while a quantised sensor's steps give it several percent or more (6.7 %
 * and up on the simulated plant, whose continuous sensors stay under 0.2 %). Stretches in
 * which a reading is held (clustered repeats) are caught apart from this share: a normal window
 * that already looks stuck switches the check off, and retraining cuts held stretches out.
 */
export const QUANTISED_ZERO_SHARE = 0.01;

/** Floor inside the quiet statistic `-ln(dynamics + QUIET_EPS)`. */
export const QUIET_EPS = 1e-9;

/**
 * The three per-window statistics of the default model. `w` are the whitened DCT coefficients and
 * `c` the SVDD centre: level = (w_0 - c_0)^2 (where the window sits), dynamics =
 * sum_{k>=1} (w_k - c_k)^2 (how it moves), quiet = -ln(sum_{k>=1} w_k^2 + QUIET_EPS) (how
 * suspiciously still it is: a stuck sensor; uncentred so that float32 and float64 agree).
 */
export function svddStatistics(w: Float64Array, c: ArrayLike<number>, out: Float64Array): void {
  let dyn = 0;
  let raw = 0;
  for (let k = 1; k < w.length; k++) {
    dyn += (w[k] - c[k]) ** 2;
    raw += w[k] * w[k];
  }
  out[0] = (w[0] - c[0]) ** 2;
  out[1] = dyn;
  out[2] = -Math.log(raw + QUIET_EPS);
}

/**
 * The agitation statistic: min_j ((x_j - x_{j-1}) * invScaleD)^2 over the window's changes, i.e.
 * whether every step moved a lot. A heavy-tailed sensor's single shock moves one or two steps; a
 * noise burst moves them all.
 */
export function agitationStatistic(window: ArrayLike<number>, invScaleD: number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let j = 1; j < window.length; j++) {
    const z = (window[j] - window[j - 1]) * invScaleD;
    if (z * z < min) min = z * z;
  }
  return min;
}

export interface SvddFitOptions {
  nu: number;
  epochs: number;
  tailFraction: number;
  tailMargin: number;
}

/**
 * Fits one feature. `col` is its series, `basis` the W x W DCT, `perm` a shuffled order of fit
 * windows shared by all features (so the result does not depend on how features are partitioned).
 */
export function fitSvddFeature(
  col: Float64Array,
  split: WindowSplit,
  basis: Float64Array,
  perm: Int32Array,
  opts: SvddFitOptions,
): SvddFeatureFit {
  const W = split.windowSize;
  const fitVals = Float64Array.from(split.fitFrames, (t) => col[t]);
  const loc = median(fitVals);
  const nFit = split.fit.length;
  const y = dctWindows(col, split.fit, basis, W, loc);
  // Robust scale per coefficient, floored so quantised or constant sensors cannot divide by zero.
  const invScale = new Float64Array(W);
  const coef = new Float64Array(nFit);
  const floor = Math.max(Math.abs(loc) * 1e-6, 1e-9);
  const changes = changeStats(col, split.fitFrames);
  const invScaleD = 1 / Math.max(changes.scale, floor);
  let maxScale = 0;
  const scales = new Float64Array(W);
  for (let k = 0; k < W; k++) {
    let ss = 0;
    for (let i = 0; i < nFit; i++) {
      coef[i] = y[i * W + k];
      ss += coef[i] * coef[i];
    }
    const rms = Math.sqrt(ss / nFit);
    const med = median(coef);
    for (let i = 0; i < nFit; i++) coef[i] = Math.abs(coef[i] - med);
    const mad = 1.4826 * median(coef);
    scales[k] = Math.max(mad, 0.5 * rms, floor);
    if (scales[k] > maxScale) maxScale = scales[k];
  }
  for (let k = 0; k < W; k++) invScale[k] = 1 / Math.max(scales[k], 1e-3 * maxScale);
  for (let i = 0; i < nFit; i++) for (let k = 0; k < W; k++) y[i * W + k] *= invScale[k];
  // SVDD: min R^2 + 1/(nu n) sum max(0, ||y - c||^2 - R^2), started from the coordinate medians.
  const center = new Float64Array(W);
  for (let k = 0; k < W; k++) {
    for (let i = 0; i < nFit; i++) coef[i] = y[i * W + k];
    center[k] = median(coef);
  }
  const d2 = new Float64Array(nFit);
  for (let i = 0; i < nFit; i++) d2[i] = dist2(y, i, center, W);
  let r2 = quantileSorted(d2.sort(), 1 - opts.nu);
  const avgC = new Float64Array(W);
  let avgR2 = 0;
  let avgN = 0;
  const steps = opts.epochs * nFit;
  for (let s = 0; s < steps; s++) {
    const i = perm[s % nFit];
    const eta = sgdSchedule(s, nFit);
    const d = dist2(y, i, center, W);
    if (d > r2) {
      // The centre moves toward points outside the ball (its fixed point: their mean, as in SVDD).
      for (let k = 0; k < W; k++) center[k] += 0.2 * eta * (y[i * W + k] - center[k]);
      r2 += eta * (1 / opts.nu - 1);
    } else {
      r2 -= eta;
    }
    if (r2 < 0) r2 = 0;
    if (s >= steps / 2) {
      for (let k = 0; k < W; k++) avgC[k] += center[k];
      avgR2 += r2;
      avgN++;
    }
  }
  for (let k = 0; k < W; k++) center[k] = avgC[k] / avgN;
  const radius2 = avgR2 / avgN;
  // Held-out windows: the statistics whose tails are calibrated.
  const yc = dctWindows(col, split.cal, basis, W, loc);
  const nCal = split.cal.length;
  const stats = Array.from({ length: 4 }, () => new Float64Array(nCal));
  const e = new Float64Array(W);
  const st = new Float64Array(3);
  const centred = new Float64Array(W);
  for (let i = 0; i < nCal; i++) {
    for (let k = 0; k < W; k++) e[k] = yc[i * W + k] * invScale[k];
    svddStatistics(e, center, st);
    for (let r = 0; r < 3; r++) stats[r][i] = st[r];
    for (let j = 0; j < W; j++) centred[j] = col[split.cal[i] + j] - loc;
    stats[3][i] = agitationStatistic(centred, invScaleD);
  }
  // Heavy tails cannot be told apart from light ones by ~150 exceedances alone; the kurtosis of
  // the frame-to-frame changes (exact zeros of quantised sensors left out) is much clearer
  // evidence, and a heavy sensor's shape is then assumed to be at least HEAVY_MIN_XI.
  // The evidence comes from the whole history (fit and calibration parts): it only ever makes a
  // tail heavier, and the fit part alone (40 % of a history) missed heavy-tailed sensors whose
  // wild readings happened to fall later.
  const all = changeStats(
    col,
    Int32Array.from({ length: col.length }, (_, t) => t),
  );
  const { kurtosis } = all;
  const quantised = all.zeroChanges > QUANTISED_ZERO_SHARE * all.changes;
  const heavy = kurtosis > HEAVY_KURTOSIS;
  const tails = stats.map((v, r) => {
    // The quiet statistic's tail is exponential by construction (the density of a sum of squares
    // near zero), so it gets no shape margin.
    const fit = fitTail(v, opts.tailFraction, r === 2 ? 0 : opts.tailMargin);
    if (heavy && r < 2 && fit.xi < HEAVY_MIN_XI) fit.xi = HEAVY_MIN_XI;
    if (heavy && r === 3 && fit.xi < HEAVY_MIN_XI_AGITATION) fit.xi = HEAVY_MIN_XI_AGITATION;
    return fit;
  });
  // A quantised sensor or one whose normal windows already look stuck (raw dynamics below 1e-6)
  // can sit still legitimately: its quiet score is off.
  let quietEnabled = !quantised;
  for (const q of stats[2]) if (q > -Math.log(1e-6)) quietEnabled = false;
  const agitationEnabled = heavy && !quantised;
  return {
    loc,
    invScaleD,
    invScale,
    center,
    radius2,
    tails,
    kurtosis,
    heavy,
    quietEnabled,
    agitationEnabled,
  };
}

function dctWindows(
  col: Float64Array,
  starts: Int32Array,
  basis: Float64Array,
  W: number,
  loc: number,
): Float64Array {
  const y = new Float64Array(starts.length * W);
  for (let i = 0; i < starts.length; i++) {
    const t0 = starts[i];
    for (let k = 0; k < W; k++) {
      let acc = 0;
      for (let j = 0; j < W; j++) acc += basis[k * W + j] * (col[t0 + j] - loc);
      y[i * W + k] = acc;
    }
  }
  return y;
}

function dist2(y: Float64Array, i: number, c: Float64Array, W: number): number {
  let d = 0;
  for (let k = 0; k < W; k++) {
    const e = y[i * W + k] - c[k];
    d += e * e;
  }
  return d;
}

function quantileSorted(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * The frame-to-frame changes of consecutive fit frames: how many there are, the excess kurtosis
 * of the non-zero ones (tail-heaviness evidence), how many are exactly zero (quantised sensors),
 * and their robust scale (1.4826 x the median absolute change, the agitation statistic's unit).
 */
function changeStats(
  col: Float64Array,
  frames: Int32Array,
): { kurtosis: number; zeroChanges: number; changes: number; scale: number } {
  let zeroChanges = 0;
  let m1 = 0;
  let m2 = 0;
  let m4 = 0;
  const d: number[] = [];
  const abs: number[] = [];
  for (let i = 1; i < frames.length; i++) {
    if (frames[i] !== frames[i - 1] + 1) continue;
    const x = col[frames[i]] - col[frames[i - 1]];
    abs.push(Math.abs(x));
    if (x !== 0) d.push(x);
    else zeroChanges++;
  }
  const scale = abs.length ? 1.4826 * median(Float64Array.from(abs)) : 0;
  const n = d.length;
  const changes = abs.length;
  if (n < 20) return { kurtosis: 0, zeroChanges, changes, scale };
  for (const x of d) m1 += x;
  m1 /= n;
  for (const x of d) {
    const c2 = (x - m1) ** 2;
    m2 += c2;
    m4 += c2 * c2;
  }
  m2 /= n;
  m4 /= n;
  return { kurtosis: m2 > 0 ? m4 / (m2 * m2) - 3 : 0, zeroChanges, changes, scale };
}
