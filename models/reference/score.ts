// Plain-TypeScript scorer of both feature-wise models: the reference the ONNX graphs are tested against.
import { agitationStatistic, svddStatistics } from "../featurewise/fit_svdd.ts";
import type { FeaturewiseParams } from "../featurewise/params.ts";

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
  const W = params.windowSize;
  const F = params.nFeatures;
  if (windows.length !== batch * W * F) {
    throw new RangeError(`'windows' must hold ${batch}x${W}x${F} values, got ${windows.length}`);
  }
  const out = new Float32Array(batch * F);
  const { tailU, tailK, scoreA, scoreB } = params;
  const R = params.nStats;
  const y = new Float64Array(W);
  const e = new Float64Array(W);
  const c = new Float64Array(W);
  const stats = new Float64Array(4);
  for (let b = 0; b < batch; b++) {
    const base = b * W * F;
    for (let f = 0; f < F; f++) {
      if (params.kind === "featurewise_ocsvm_linear") {
        let dot = 0;
        for (let i = 0; i < W; i++) {
          dot += windows[base + i * F + f] * params.invScale[f] * params.weight[i * F + f];
        }
        stats[0] = params.rho[f] - dot;
      } else {
        const { loc, basis, invScale, center } = params;
        for (let i = 0; i < W; i++) y[i] = windows[base + i * F + f] - loc[f];
        for (let k = 0; k < W; k++) {
          let acc = 0;
          for (let i = 0; i < W; i++) acc += basis[k * W + i] * y[i];
          e[k] = acc * invScale[k * F + f];
          c[k] = center[k * F + f];
        }
        svddStatistics(e, c, stats);
        stats[3] = agitationStatistic(y, params.invScaleD[f]);
      }
      let best = Number.NEGATIVE_INFINITY;
      for (let r = 0; r < R; r++) {
        const i = r * F + f;
        const logp = Math.log(Math.max(1 + (stats[r] - tailU[i]) * tailK[i], 1e-30));
        best = Math.max(best, logp * scoreA[i] + scoreB[i]);
      }
      out[b * F + f] = Math.min(1, Math.max(0, best));
    }
  }
  return out;
}
