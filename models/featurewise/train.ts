// Trains either feature-wise model on a [frames, features] series: fit, calibrate, pack parameters.
import { Rng } from "../signal/prng.ts";
import { fitLinearFeature } from "./fit_linear.ts";
import { fitSvddFeature } from "./fit_svdd.ts";
import { dctBasis, type FeaturewiseKind, type FeaturewiseParams, statSelector } from "./params.ts";
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
  /** Per-feature tail fits (not serialised; for diagnostics and experiments). */
  tails: TailFit[];
}

export const TRAIN_DEFAULTS = {
  windowSize: 5,
  seed: 1,
  nu: 0.1,
  epochs: 4,
  tailFraction: 0.1,
  tailMargin: 0.5,
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
  // One calibrated statistic for the linear model, four for the default (level, dynamics, quiet,
  // agitation);
  // the per-frame budget is shared equally between them (Bonferroni).
  const R = o.kind === "featurewise_ocsvm_linear" ? 1 : 4;
  const pStat = pTarget / R;
  const tails: TailFit[] = new Array(R * F);
  const tailU = new Float32Array(R * F);
  const tailK = new Float32Array(R * F);
  const scoreA = new Float32Array(R * F);
  const scoreB = new Float32Array(R * F);
  const invScale = new Float32Array(o.kind === "featurewise_ocsvm_linear" ? F : W * F);
  const linWeight = new Float32Array(W * F);
  const rho = new Float32Array(F);
  const loc = new Float32Array(F);
  const invScaleD = new Float32Array(F);
  const center = new Float32Array(W * F);
  let radiusSum = 0;
  let heavyCount = 0;
  let quietOff = 0;
  let agitationOn = 0;
  const statOff = new Uint8Array(4);
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
      let fTails: TailFit[];
      if (o.kind === "featurewise_ocsvm_linear") {
        const r = fitLinearFeature(col, split, perm, fitOpts);
        invScale[f] = r.invScale;
        for (let k = 0; k < W; k++) linWeight[k * F + f] = r.weight[k];
        rho[f] = r.rho;
        fTails = [r.tail];
      } else {
        const r = fitSvddFeature(col, split, basis, perm, fitOpts);
        loc[f] = r.loc;
        invScaleD[f] = r.invScaleD;
        for (let k = 0; k < W; k++) {
          invScale[k * F + f] = r.invScale[k];
          center[k * F + f] = r.center[k];
        }
        radiusSum += r.radius2;
        fTails = r.tails;
        if (r.heavy) heavyCount++;
        if (!r.quietEnabled) quietOff++;
        if (r.agitationEnabled) agitationOn++;
        statOff[2] = r.quietEnabled ? 0 : 1;
        statOff[3] = r.agitationEnabled ? 0 : 1;
      }
      for (let r = 0; r < R; r++) {
        const i = r * F + f;
        tails[i] = fTails[r];
        const m = scoreMap(fTails[r], pStat, o.threshold);
        if (statOff[r]) {
          // A disabled statistic scores 0 whatever its value.
          m.a = 0;
          m.b = 0;
        }
        tailU[i] = m.u;
        tailK[i] = m.k;
        scoreA[i] = m.a;
        scoreB[i] = m.b;
      }
    }
    o.onProgress?.(f0 + nc, F);
  }
  const tailParams = { nStats: R, tailU, tailK, scoreA, scoreB };
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
          invScaleD,
          basis: Float32Array.from(basis),
          invScale,
          center,
          select: statSelector(W),
          ...tailParams,
        };
  const q = (a: Float64Array, p: number) =>
    round(a[Math.min(a.length - 1, Math.floor(p * a.length))]);
  const statNames = R === 1 ? ["decision"] : ["level", "dynamics", "quiet", "agitation"];
  const tailStats: Record<string, unknown> = {};
  statNames.forEach((name, r) => {
    const part = tails.slice(r * F, (r + 1) * F);
    const xiHat = Float64Array.from(part, (t) => t.xiHat).sort();
    const xi = Float64Array.from(part, (t) => t.xi).sort();
    const exc = Float64Array.from(part, (t) => t.exceedances).sort();
    tailStats[name] = {
      xi_hat_quantiles: {
        p10: q(xiHat, 0.1),
        p50: q(xiHat, 0.5),
        p90: q(xiHat, 0.9),
        p99: q(xiHat, 0.99),
      },
      xi_used_quantiles: { p10: q(xi, 0.1), p50: q(xi, 0.5), p90: q(xi, 0.9), p99: q(xi, 0.99) },
      exceedances_median: q(exc, 0.5),
    };
  });
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
    statistics:
      o.kind === "featurewise_ocsvm_linear"
        ? { decision: "s = rho - w.(x / rms): negated linear OCSVM decision" }
        : {
            level: "e_0^2, e = DCT(x - loc) * inv_scale - center (SVDD coordinates)",
            dynamics: "sum_{k>=1} e_k^2",
            quiet:
              "-ln(sum_{k>=1} w_k^2 + 1e-9), w uncentred (a stuck sensor is suspiciously still)",
            agitation:
              "min over the window's changes of ((x_j - x_{j-1}) * inv_scale_d)^2 (every step large); heavy-tailed continuous sensors only",
            combined: "score = max over the statistics",
          },
    heldout_windows: split.cal.length,
    tail_fraction: o.tailFraction,
    tail_margin_se: o.tailMargin,
    alpha_frame: o.alphaFrame,
    p_target: pTarget,
    p_target_per_statistic: pStat,
    threshold: o.threshold,
    mapping:
      "score = clip(threshold * ln(p) / ln(p_target_per_statistic), 0, 1), p = p_u * (1 + xi (s - u) / beta)^(-1/xi); max over statistics",
    onnx_form: "score = clip(scoreA * ln(max(1 + tailK * (s - tailU), 1e-30)) + scoreB, 0, 1)",
    tails: tailStats,
    ...(R === 4
      ? {
          heavy_tail_rule:
            "excess kurtosis of non-zero frame-to-frame changes > 0.5 => shape >= 0.6 (level, dynamics), >= 0.3 (agitation)",
          heavy_tailed_features: heavyCount,
          quiet_disabled_features: quietOff,
          agitation_enabled_features: agitationOn,
        }
      : {}),
  };
  return { params, summary, calibration, tails };
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
