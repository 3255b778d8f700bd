// Trains either feature-wise model on a [frames, features] series: fit, calibrate, pack parameters.
import { Rng } from "../signal/prng.ts";
import { fitLinearFeature } from "./fit_linear.ts";
import { fitSvddFeature } from "./fit_svdd.ts";
import { dctBasis, type FeaturewiseKind, type FeaturewiseParams } from "./params.ts";
import { splitWindows } from "./split.ts";
import { scoreMap, type TailFit } from "./tail.ts";

/** A training series: row-major `[nFrames, nFeatures]` raw sensor values. */
export interface TrainData {
  values: Float32Array;
  nFrames: number;
  nFeatures: number;
}

export interface TrainOptions {
  kind: FeaturewiseKind;
  windowSize?: number;
  seed?: number;
  /** OCSVM/SVDD nu: fraction of fit windows allowed outside the boundary. */
  nu?: number;
  epochs?: number;
  /** Fraction of held-out windows used as tail exceedances. */
  tailFraction?: number;
  /** Standard errors added to the fitted tail shape (conservatism of the extrapolation). */
  tailMargin?: number;
  /** Target false-alert probability per frame over all features at the threshold. */
  alphaFrame?: number;
  threshold?: number;
  onProgress?: (featuresDone: number, nFeatures: number) => void;
}

export interface TrainResult {
  params: FeaturewiseParams;
  /** Hyper-parameters and fit statistics for the metadata. */
  summary: Record<string, unknown>;
  calibration: Record<string, unknown>;
}

export const TRAIN_DEFAULTS = {
  windowSize: 5,
  seed: 1,
  nu: 0.1,
  epochs: 4,
  tailFraction: 0.1,
  tailMargin: 1,
  alphaFrame: 1e-4,
  threshold: 0.9,
} as const;

const CHUNK = 512;

/**
 * Fits one model per feature and calibrates each on held-out windows of the same series.
 *
 * @example const { params } = trainFeaturewise(data, { kind: "featurewise_ocsvm_svdd" });
 */
export function trainFeaturewise(data: TrainData, options: TrainOptions): TrainResult {
  const o = { ...TRAIN_DEFAULTS, ...options };
  const { nFrames: T, nFeatures: F, values } = data;
  const W = o.windowSize;
  if (values.length !== T * F) throw new RangeError(`'values' must hold ${T * F} numbers`);
  const split = splitWindows(T, W);
  const rng = new Rng(o.seed);
  const perm = Int32Array.from(split.fit.keys());
  for (let i = perm.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const pTarget = o.alphaFrame / F;
  const fitOpts = {
    nu: o.nu,
    epochs: o.epochs,
    tailFraction: o.tailFraction,
    tailMargin: o.tailMargin,
  };
  const tails: TailFit[] = new Array(F);
  const tailU = new Float32Array(F);
  const tailK = new Float32Array(F);
  const scoreA = new Float32Array(F);
  const scoreB = new Float32Array(F);
  const invScale = new Float32Array(o.kind === "featurewise_ocsvm_linear" ? F : W * F);
  const linWeight = new Float32Array(W * F);
  const rho = new Float32Array(F);
  const loc = new Float32Array(F);
  const center = new Float32Array(W * F);
  let radiusSum = 0;
  const basis = dctBasis(W);
  const col = new Float64Array(T);
  const chunk = new Float64Array(T * CHUNK);
  for (let f0 = 0; f0 < F; f0 += CHUNK) {
    const nc = Math.min(CHUNK, F - f0);
    // Transpose a block of columns once: per-feature work then reads contiguous memory.
    for (let t = 0; t < T; t++) {
      const row = t * F + f0;
      for (let j = 0; j < nc; j++) chunk[j * T + t] = values[row + j];
    }
    for (let j = 0; j < nc; j++) {
      const f = f0 + j;
      col.set(chunk.subarray(j * T, j * T + T));
      let tail: TailFit;
      if (o.kind === "featurewise_ocsvm_linear") {
        const r = fitLinearFeature(col, split, perm, fitOpts);
        invScale[f] = r.invScale;
        for (let k = 0; k < W; k++) linWeight[k * F + f] = r.weight[k];
        rho[f] = r.rho;
        tail = r.tail;
      } else {
        const r = fitSvddFeature(col, split, basis, perm, fitOpts);
        loc[f] = r.loc;
        for (let k = 0; k < W; k++) {
          invScale[k * F + f] = r.invScale[k];
          center[k * F + f] = r.center[k];
        }
        radiusSum += r.radius2;
        tail = r.tail;
      }
      tails[f] = tail;
      const m = scoreMap(tail, pTarget, o.threshold);
      tailU[f] = m.u;
      tailK[f] = m.k;
      scoreA[f] = m.a;
      scoreB[f] = m.b;
    }
    o.onProgress?.(f0 + nc, F);
  }
  const tailParams = { tailU, tailK, scoreA, scoreB };
  const params: FeaturewiseParams =
    o.kind === "featurewise_ocsvm_linear"
      ? {
          kind: o.kind,
          windowSize: W,
          nFeatures: F,
          invScale,
          weight: linWeight,
          rho,
          ...tailParams,
        }
      : {
          kind: o.kind,
          windowSize: W,
          nFeatures: F,
          loc,
          basis: Float32Array.from(basis),
          invScale,
          center,
          ...tailParams,
        };
  const xiHat = Float64Array.from(tails, (t) => t.xiHat).sort();
  const q = (a: Float64Array, p: number) =>
    round(a[Math.min(a.length - 1, Math.floor(p * a.length))]);
  const exc = Float64Array.from(tails, (t) => t.exceedances).sort();
  const summary: Record<string, unknown> = {
    seed: o.seed,
    frames: T,
    window_size: W,
    fit_windows: split.fit.length,
    heldout_windows: split.cal.length,
    block_size: split.blockSize,
    nu: o.nu,
    epochs: o.epochs,
    ...(o.kind === "featurewise_ocsvm_svdd" ? { mean_radius2: round(radiusSum / F) } : {}),
  };
  const calibration: Record<string, unknown> = {
    method: "gpd_tail",
    statistic:
      o.kind === "featurewise_ocsvm_linear"
        ? "s = rho - w.(x / rms): negated linear OCSVM decision"
        : "s = ||DCT(x - loc) * inv_scale - center||^2: squared SVDD distance",
    heldout_windows: split.cal.length,
    tail_fraction: o.tailFraction,
    tail_margin_se: o.tailMargin,
    alpha_frame: o.alphaFrame,
    p_target: pTarget,
    threshold: o.threshold,
    mapping:
      "score = clip(threshold * ln(p) / ln(p_target), 0, 1), p = p_u * (1 + xi (s - u) / beta)^(-1/xi)",
    onnx_form: "score = clip(scoreA * ln(max(1 + tailK * (s - tailU), 1e-30)) + scoreB, 0, 1)",
    xi_hat_quantiles: {
      p10: q(xiHat, 0.1),
      p50: q(xiHat, 0.5),
      p90: q(xiHat, 0.9),
      p99: q(xiHat, 0.99),
    },
    exceedances_median: q(exc, 0.5),
  };
  return { params, summary, calibration };
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
