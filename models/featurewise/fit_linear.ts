// Fits the faithful baseline for one feature: a linear One-Class SVM (Schölkopf) on the raw window.

import { sgdSchedule } from "./_stats.ts";
import type { WindowSplit } from "./split.ts";
import { fitTail, type TailFit } from "./tail.ts";

export interface LinearFeatureFit {
  invScale: number;
  weight: Float64Array;
  rho: number;
  tail: TailFit;
}

export interface LinearFitOptions {
  nu: number;
  epochs: number;
  tailFraction: number;
  tailMargin: number;
}

/**
 * SGD on `1/2 ||w||^2 - rho + 1/nu * mean(max(0, rho - w.z))`, z = raw window / RMS (the scaling
 * only conditions SGD; the geometry, separation from the origin, is the original design's).
 */
export function fitLinearFeature(
  col: Float64Array,
  split: WindowSplit,
  perm: Int32Array,
  opts: LinearFitOptions,
): LinearFeatureFit {
  const W = split.windowSize;
  let ss = 0;
  for (const t of split.fitFrames) ss += col[t] * col[t];
  const rms = Math.sqrt(ss / split.fitFrames.length);
  const invScale = 1 / Math.max(rms, 1e-12);
  const nFit = split.fit.length;
  const w = new Float64Array(W);
  let rho = 0;
  const avgW = new Float64Array(W);
  let avgRho = 0;
  let avgN = 0;
  const steps = opts.epochs * nFit;
  for (let s = 0; s < steps; s++) {
    const t0 = split.fit[perm[s % nFit]];
    const eta = sgdSchedule(s, nFit);
    let dot = 0;
    for (let j = 0; j < W; j++) dot += w[j] * col[t0 + j] * invScale;
    const violated = rho - dot > 0;
    for (let j = 0; j < W; j++) {
      const g = w[j] - (violated ? (col[t0 + j] * invScale) / opts.nu : 0);
      w[j] -= eta * g;
    }
    rho -= eta * (-1 + (violated ? 1 / opts.nu : 0));
    if (s >= steps / 2) {
      for (let j = 0; j < W; j++) avgW[j] += w[j];
      avgRho += rho;
      avgN++;
    }
  }
  for (let j = 0; j < W; j++) w[j] = avgW[j] / avgN;
  rho = avgRho / avgN;
  const s = new Float64Array(split.cal.length);
  for (let i = 0; i < s.length; i++) {
    const t0 = split.cal[i];
    let dot = 0;
    for (let j = 0; j < W; j++) dot += w[j] * col[t0 + j] * invScale;
    s[i] = rho - dot;
  }
  const tail = fitTail(s, opts.tailFraction, opts.tailMargin);
  return { invScale, weight: w, rho, tail };
}
