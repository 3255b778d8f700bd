// Fits the default model for one feature: robust whitening of the window's DCT, SVDD centre by SGD.

import { median, sgdSchedule } from "./_stats.ts";
import type { WindowSplit } from "./split.ts";
import { fitTail, type TailFit } from "./tail.ts";

export interface SvddFeatureFit {
  loc: number;
  invScale: Float64Array;
  center: Float64Array;
  radius2: number;
  tail: TailFit;
}

export interface SvddFitOptions {
  nu: number;
  epochs: number;
  tailFraction: number;
  tailMargin: number;
}

/**
 * `col` is one feature's series, `basis` the W x W DCT, `perm` a shuffled order of fit windows
 * shared by all features (so the result does not depend on how features are partitioned).
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
  // Held-out windows: the nonconformity s = ||y - c||^2 whose tail is calibrated.
  const yc = dctWindows(col, split.cal, basis, W, loc);
  const s = new Float64Array(split.cal.length);
  for (let i = 0; i < s.length; i++) {
    let acc = 0;
    for (let k = 0; k < W; k++) {
      const e = yc[i * W + k] * invScale[k] - center[k];
      acc += e * e;
    }
    s[i] = acc;
  }
  const tail = fitTail(s, opts.tailFraction, opts.tailMargin);
  return { loc, invScale, center, radius2, tail };
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
