// The detectors compared by the evaluation: the ONNX models and the two baselines, behind one interface.
import * as ort from "onnxruntime-node";
import type { LevelBaselineSpec } from "../../scoring/level_baseline.ts";
import type { LinearParams } from "../featurewise/params.ts";

/** Scores a batch of raw windows `[batch, W, F]`; a feature is flagged when its score >= threshold. */
export interface Scorer {
  readonly name: string;
  readonly description: string;
  readonly threshold: number;
  score(windows: Float32Array, batch: number): Promise<Float32Array>;
  /** The model's running levels (metadata `baseline`): its windows are transformed in stream order. */
  readonly baseline?: LevelBaselineSpec;
  /** After `score`: the batch's severity and statistic outputs, when the model has them. */
  readonly extras?: { severity?: Float32Array; statistic?: Float64Array };
}

/** A committed (or freshly trained) model, scored through ONNX Runtime. */
export async function onnxScorer(
  name: string,
  description: string,
  bytes: Uint8Array,
  shape: {
    windowSize: number;
    nFeatures: number;
    input: string;
    output: string;
    /** Outputs read into `extras` after each batch (the incident tracker uses them). */
    severity?: string;
    statistic?: string;
    /** The model's running levels, when it has them. */
    baseline?: LevelBaselineSpec;
  },
  threshold: number,
): Promise<Scorer> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  const names = [shape.output, shape.severity, shape.statistic].filter(
    (n): n is string => n !== undefined && session.outputNames.includes(n),
  );
  const extras: { severity?: Float32Array; statistic?: Float64Array } = {};
  return {
    name,
    description,
    threshold,
    extras,
    baseline: shape.baseline,
    async score(windows, batch) {
      const input = new ort.Tensor(
        "float32",
        windows.subarray(0, batch * shape.windowSize * shape.nFeatures),
        [batch, shape.windowSize, shape.nFeatures],
      );
      const out = await session.run({ [shape.input]: input }, names);
      extras.severity = shape.severity ? (out[shape.severity]?.data as Float32Array) : undefined;
      const stat = shape.statistic ? out[shape.statistic]?.data : undefined;
      // int64 comes back as BigInt64Array: the tracker wants plain numbers.
      extras.statistic = stat ? Float64Array.from(stat as ArrayLike<number>, Number) : undefined;
      return out[shape.output].data as Float32Array;
    },
  };
}

/** The original design: the linear OCSVM's raw `-decision` compared with 0.9, no calibration. */
export function uncalibratedLinearScorer(p: LinearParams, threshold: number): Scorer {
  const W = p.windowSize;
  const F = p.nFeatures;
  return {
    name: "baseline_linear_uncalibrated",
    description: "original design: linear OCSVM, -decision >= 0.9",
    threshold,
    async score(windows, batch) {
      const out = new Float32Array(batch * F);
      for (let b = 0; b < batch; b++) {
        for (let f = 0; f < F; f++) {
          let dot = 0;
          for (let i = 0; i < W; i++)
            dot += windows[(b * W + i) * F + f] * p.invScale[f] * p.weight[i * F + f];
          out[b * F + f] = p.rho[f] - dot;
        }
      }
      return out;
    },
  };
}

/**
 * Per-feature z-score over the window: max_i |x_i - mean| / std with the training mean and std,
 * flagged at the Gaussian two-sided quantile of the same per-feature false-alarm target.
 */
export function zScoreScorer(
  mean: Float64Array,
  std: Float64Array,
  windowSize: number,
  threshold: number,
): Scorer {
  const F = mean.length;
  const W = windowSize;
  return {
    name: "baseline_zscore",
    description: `max |x - mean| / std over the window >= ${threshold.toFixed(2)} (Gaussian quantile of p_target)`,
    threshold,
    async score(windows, batch) {
      const out = new Float32Array(batch * F);
      for (let b = 0; b < batch; b++) {
        for (let f = 0; f < F; f++) {
          let z = 0;
          for (let i = 0; i < W; i++)
            z = Math.max(z, Math.abs(windows[(b * W + i) * F + f] - mean[f]));
          out[b * F + f] = z / std[f];
        }
      }
      return out;
    },
  };
}

/** Two-sided standard normal quantile: z with P(|N(0,1)| > z) = p (bisection on erfc). */
export function gaussianTwoSided(p: number): number {
  let lo = 0;
  let hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (erfc(mid / Math.SQRT2) > p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** erfc with a continued fraction tail (accurate far into the tail, where we need it). */
function erfc(x: number): number {
  if (x < 3) {
    // Abramowitz-Stegun 7.1.26 is too coarse near 0 for nothing we need; use series via erf.
    let sum = x;
    let term = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (x + f);
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / (x + f);
}
