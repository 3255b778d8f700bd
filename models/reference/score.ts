// Plain-TypeScript scorer of both feature-wise models: the reference the ONNX graphs are tested against.
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
  const y = new Float64Array(W);
  for (let b = 0; b < batch; b++) {
    const base = b * W * F;
    for (let f = 0; f < F; f++) {
      let s = 0;
      if (params.kind === "featurewise_ocsvm_linear") {
        let dot = 0;
        for (let i = 0; i < W; i++) {
          dot += windows[base + i * F + f] * params.invScale[f] * params.weight[i * F + f];
        }
        s = params.rho[f] - dot;
      } else {
        const { loc, basis, invScale, center } = params;
        for (let i = 0; i < W; i++) y[i] = windows[base + i * F + f] - loc[f];
        for (let k = 0; k < W; k++) {
          let acc = 0;
          for (let i = 0; i < W; i++) acc += basis[k * W + i] * y[i];
          const e = acc * invScale[k * F + f] - center[k * F + f];
          s += e * e;
        }
      }
      const logp = Math.log(Math.max(1 + (s - tailU[f]) * tailK[f], 1e-30));
      const score = logp * scoreA[f] + scoreB[f];
      out[b * F + f] = score < 0 ? 0 : Math.min(score, 1);
    }
  }
  return out;
}
