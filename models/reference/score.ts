// Plain-TypeScript scorer of both feature-wise models: the reference the ONNX graphs are tested against.
import { agitationStatistic, svddStatistics } from "../featurewise/fit_svdd.ts";
import type { FeaturewiseParams } from "../featurewise/params.ts";
import { robustProjection } from "../featurewise/pca.ts";

/** Everything the graph returns for a batch, each `[batch, nFeatures]`. */
export interface DetailedScores {
  /** Calibrated scores in [0, 1]. */
  scores: Float32Array;
  /** -log10 of the fitted tail probability of the deciding statistic (does not saturate). */
  severity: Float32Array;
  /** Index of the deciding statistic (the first of tied ones). */
  statistic: Int32Array;
  /** Gap between the best and the second-best unclipped score (0 with one statistic). */
  margin: Float32Array;
}

/**
 * Scores `windows` laid out `[batch, windowSize, nFeatures]` (row-major, raw sensor values) and
 * returns `[batch, nFeatures]` calibrated scores in [0, 1], computed in float64.
 *
 * @example const scores = scoreWindows(params, windows, 64);
 */
export function scoreWindows(
  params: FeaturewiseParams,
  windows: Float32Array,
  batch: number,
): Float32Array {
  return scoreWindowsDetailed(params, windows, batch).scores;
}

/**
 * Like `scoreWindows`, plus the severity and the deciding statistic of every feature.
 *
 * @example const { severity, statistic } = scoreWindowsDetailed(params, windows, 8);
 */
export function scoreWindowsDetailed(
  params: FeaturewiseParams,
  windows: Float32Array,
  batch: number,
): DetailedScores {
  const W = params.windowSize;
  const F = params.nFeatures;
  if (windows.length !== batch * W * F) {
    throw new RangeError(`'windows' must hold ${batch}x${W}x${F} values, got ${windows.length}`);
  }
  const scores = new Float32Array(batch * F);
  const severity = new Float32Array(batch * F);
  const statistic = new Int32Array(batch * F);
  const margin = new Float32Array(batch * F);
  const { tailU, tailK, scoreA, scoreB } = params;
  const R = params.nStats;
  const y = new Float64Array(W);
  const e = new Float64Array(W);
  const c = new Float64Array(W);
  const stats = new Float64Array(R);
  const zbar = new Float64Array(F);
  const proj = new Float64Array(params.kind === "featurewise_ocsvm_svdd" ? params.crossCols : 0);
  const work = new Float64Array(F);
  for (let b = 0; b < batch; b++) {
    const base = b * W * F;
    if (params.kind === "featurewise_ocsvm_svdd") {
      // The cross-sensor stage needs the whole window first: project zbar on the subspace.
      const { loc, invScaleZ, crossBasis, crossCols, crossScale } = params;
      for (let f = 0; f < F; f++) {
        let m = 0;
        for (let i = 0; i < W; i++) m += windows[base + i * F + f] - loc[f];
        zbar[f] = (m / W) * invScaleZ[f];
      }
      robustProjection(zbar, crossBasis, crossCols, crossScale, proj, work);
    }
    for (let f = 0; f < F; f++) {
      if (params.kind === "featurewise_ocsvm_linear") {
        let dot = 0;
        for (let i = 0; i < W; i++) {
          dot += windows[base + i * F + f] * params.invScale[f] * params.weight[i * F + f];
        }
        stats[0] = params.rho[f] - dot;
      } else {
        const { loc, basis, invScale, center, crossBasis, crossCols } = params;
        for (let i = 0; i < W; i++) y[i] = windows[base + i * F + f] - loc[f];
        for (let k = 0; k < W; k++) {
          let acc = 0;
          for (let i = 0; i < W; i++) acc += basis[k * W + i] * y[i];
          e[k] = acc * invScale[k * F + f];
          c[k] = center[k * F + f];
        }
        svddStatistics(e, c, stats);
        stats[3] = agitationStatistic(y, params.invScaleD[f]);
        let r = zbar[f];
        for (let j = 0; j < crossCols; j++) r -= crossBasis[f * crossCols + j] * proj[j];
        stats[4] = r * r;
      }
      let best = Number.NEGATIVE_INFINITY;
      let second = Number.NEGATIVE_INFINITY;
      let arg = 0;
      for (let r = 0; r < R; r++) {
        const i = r * F + f;
        const logp = Math.log(Math.max(1 + (stats[r] - tailU[i]) * tailK[i], 1e-30));
        const raw = logp * scoreA[i] + scoreB[i];
        if (raw > best) {
          second = best;
          best = raw;
          arg = r;
        } else if (raw > second) {
          second = raw;
        }
      }
      const o = b * F + f;
      scores[o] = Math.min(1, Math.max(0, best));
      severity[o] = Math.max(best, 0) * params.severityScale;
      statistic[o] = arg;
      margin[o] = R > 1 ? best - second : 0;
    }
  }
  return { scores, severity, statistic, margin };
}
