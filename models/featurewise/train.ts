// Trains either feature-wise model on a [frames, features] series: fit, calibrate, pack parameters.

import { applyToHistory, type LevelBaselineSpec, spanFor } from "../../scoring/level_baseline.ts";
import { Rng } from "../signal/prng.ts";
import { fitLinearFeature } from "./fit_linear.ts";
import { fitSvddFeature, HEAVY_MIN_XI, QUANTISED_ZERO_SHARE } from "./fit_svdd.ts";
import { dctBasis, type FeaturewiseKind, type FeaturewiseParams, statSelector } from "./params.ts";
import { CROSS_SENSOR_DEFAULTS, fitCrossSensor, robustProjection } from "./pca.ts";
import { DEFAULT_CAL_FRACTION, splitWindows } from "./split.ts";
import { fitTail, scoreMap, type TailFit } from "./tail.ts";

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
  /** Share of the history, at its end, held out for calibration (fit on what precedes it). */
  calFraction?: number;
  /** Most components of the cross-sensor stage (0 turns the subspace off: residual = own reading). */
  crossComponents?: number;
  /**
   * Drift index above which a sensor's level is not judged (see `driftIndex`); `Infinity` judges
   * every sensor's level.
   */
  driftMax?: number;
  /**
   * Weight decay of the running level a drifting sensor is judged against (an exponentially
   * weighted mean of its recent readings, see `LevelBaseline`); 0 leaves drifting sensors'
   * levels unjudged instead.
   */
  baselineAlpha?: number;
  onProgress?: (featuresDone: number, nFeatures: number) => void;
}

export interface TrainResult {
  params: FeaturewiseParams;
  /** Hyper-parameters and fit statistics for the metadata. */
  summary: Record<string, unknown>;
  calibration: Record<string, unknown>;
  /** Names of the calibrated statistics in the order the graph's `statistic` output indexes them. */
  statistics: string[];
  /** Per-feature typical range of the raw readings (fit part of the history). */
  typical: { description: string; low: number[]; high: number[] };
  /** Per-feature tail fits (not serialised; for diagnostics and experiments). */
  tails: TailFit[];
  /** The sensors judged against a running level, and its weight (part of the model). */
  baseline?: LevelBaselineSpec;
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
  calFraction: DEFAULT_CAL_FRACTION,
  crossComponents: CROSS_SENSOR_DEFAULTS.kMax,
  driftMax: 0.5,
  baselineAlpha: 0.2,
} as const;

/** Consecutive blocks of the history compared by the drift index. */
export const DRIFT_BLOCKS = 4;

/** Statistics of the default model, in index order. */
export const SVDD_STATISTICS = ["level", "dynamics", "quiet", "agitation", "residual"] as const;
/** Quantiles of the raw readings reported as a sensor's typical range. */
const TYPICAL_Q = [0.01, 0.99] as const;

const CHUNK = 512;

/**
 * Fits one model per feature and calibrates each on held-out windows of the same series.
 *
 * @example const { params } = trainFeaturewise(data, { kind: "featurewise_ocsvm_svdd" });
 */
export function trainFeaturewise(data: TrainData, options: TrainOptions): TrainResult {
  const o = { ...TRAIN_DEFAULTS, ...options };
  const { nFrames: T, nFeatures: F } = data;
  let values = data.values;
  const W = o.windowSize;
  if (values.length !== T * F) throw new RangeError(`'values' must hold ${T * F} numbers`);
  if (!(o.baselineAlpha >= 0 && o.baselineAlpha <= 1)) {
    throw new RangeError(`'baselineAlpha' must be in [0, 1], got ${o.baselineAlpha}`);
  }
  const split = splitWindows(T, W, o.calFraction);
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
  const linear = o.kind === "featurewise_ocsvm_linear";
  // One calibrated statistic for the linear model, five for the default (level, dynamics, quiet,
  // agitation, cross-sensor residual); the per-frame budget is shared equally between them
  // (Bonferroni).
  const R = linear ? 1 : SVDD_STATISTICS.length;
  const pStat = pTarget / R;
  const tails: TailFit[] = new Array(R * F);
  const statOff = new Uint8Array(R * F);
  const invScale = new Float32Array(linear ? F : W * F);
  const linWeight = new Float32Array(W * F);
  const rho = new Float32Array(F);
  const loc = new Float32Array(F);
  const invScaleD = new Float32Array(F);
  const invScaleZ = new Float32Array(F);
  const center = new Float32Array(W * F);
  const heavyF = new Uint8Array(F);
  const drifting = new Uint8Array(F);
  const typLow: number[] = new Array(F);
  const typHigh: number[] = new Array(F);
  let radiusSum = 0;
  let heavyCount = 0;
  let quietOff = 0;
  let agitationOn = 0;
  let driftCount = 0;
  const basis = dctBasis(W);
  const col = new Float64Array(T);
  const chunk = new Float64Array(T * CHUNK);
  const nFitFrames = split.calStart;
  const fitVals = new Float64Array(nFitFrames);
  const loadChunk = (f0: number, nc: number) => {
    // Transpose a block of columns once: per-feature work then reads contiguous memory.
    for (let t = 0; t < T; t++) {
      const row = t * F + f0;
      for (let j = 0; j < nc; j++) chunk[j * T + t] = values[row + j];
    }
  };
  // Drifting sensors get a running level (when baselineAlpha > 0): the model sees, and is
  // fitted and calibrated on, their deviation from it, as the engine will feed it.
  let baseline: LevelBaselineSpec | undefined;
  if (!linear && o.baselineAlpha > 0) {
    const features: number[] = [];
    for (let f0 = 0; f0 < F; f0 += CHUNK) {
      const nc = Math.min(CHUNK, F - f0);
      loadChunk(f0, nc);
      for (let j = 0; j < nc; j++) {
        if (driftIndex(chunk.subarray(j * T, j * T + T), DRIFT_BLOCKS) > o.driftMax) {
          features.push(f0 + j);
        }
      }
    }
    baseline = { alpha: o.baselineAlpha, span: spanFor(o.baselineAlpha), features };
    if (features.length > 0) values = applyToHistory(values, F, baseline);
  }
  for (let f0 = 0; f0 < F; f0 += CHUNK) {
    const nc = Math.min(CHUNK, F - f0);
    loadChunk(f0, nc);
    for (let j = 0; j < nc; j++) {
      const f = f0 + j;
      col.set(chunk.subarray(j * T, j * T + T));
      fitVals.set(col.subarray(0, nFitFrames));
      fitVals.sort();
      typLow[f] = sig(quantileOfSorted(fitVals, TYPICAL_Q[0]));
      typHigh[f] = sig(quantileOfSorted(fitVals, TYPICAL_Q[1]));
      if (!linear && driftIndex(col, DRIFT_BLOCKS) > o.driftMax) drifting[f] = 1;
      if (linear) {
        const r = fitLinearFeature(col, split, perm, fitOpts);
        invScale[f] = r.invScale;
        for (let k = 0; k < W; k++) linWeight[k * F + f] = r.weight[k];
        rho[f] = r.rho;
        tails[f] = r.tail;
        continue;
      }
      const r = fitSvddFeature(col, split, basis, perm, fitOpts);
      loc[f] = r.loc;
      invScaleD[f] = r.invScaleD;
      // A drifting sensor has no normal level: its level is not judged and it stays out of the
      // cross-sensor stage (a zero unit makes its standardised reading 0 in the fit and the graph).
      invScaleZ[f] = drifting[f] ? 0 : 1 / robustScale(fitVals, r.loc);
      if (drifting[f]) {
        driftCount++;
        statOff[f] = 1;
        statOff[4 * F + f] = 1;
      }
      for (let k = 0; k < W; k++) {
        invScale[k * F + f] = r.invScale[k];
        center[k * F + f] = r.center[k];
      }
      radiusSum += r.radius2;
      for (let s = 0; s < 4; s++) tails[s * F + f] = r.tails[s];
      if (r.heavy) {
        heavyCount++;
        heavyF[f] = 1;
      }
      if (!r.quietEnabled) {
        quietOff++;
        statOff[2 * F + f] = 1;
      }
      if (r.agitationEnabled) agitationOn++;
      else statOff[3 * F + f] = 1;
    }
    o.onProgress?.(Math.floor((f0 + nc) / (linear ? 1 : 2)), F);
  }
  let cross: ReturnType<typeof fitCrossSensor> | undefined;
  if (!linear) {
    // Cross-sensor stage: PCA subspace of the fit part, residual contributions calibrated on the
    // calibration windows like every other statistic.
    cross = fitCrossSensor(values, F, nFitFrames, loc, invScaleZ, {
      kMax: o.crossComponents,
      seed: o.seed,
    });
    if (o.crossComponents === 0) cross.k = 0;
    const { basis: P, cols } = cross;
    const nCal = split.cal.length;
    // Scores of every calibration window on the retained components: [nCal, cols].
    const scores = new Float64Array(nCal * cols);
    const zbar = new Float64Array(F);
    const work = new Float64Array(F);
    const t = new Float64Array(cols);
    for (let i = 0; i < nCal; i++) {
      windowMeanZ(values, F, split.cal[i], W, loc, invScaleZ, zbar);
      robustProjection(zbar, P, cols, cross.residualScale, t, work);
      scores.set(t, i * cols);
    }
    const res = new Float64Array(nCal);
    for (let f0 = 0; f0 < F; f0 += CHUNK) {
      const nc = Math.min(CHUNK, F - f0);
      loadChunk(f0, nc);
      for (let j = 0; j < nc; j++) {
        const f = f0 + j;
        const cf = chunk.subarray(j * T, j * T + T);
        for (let i = 0; i < nCal; i++) {
          const t0 = split.cal[i];
          let m = 0;
          for (let w = 0; w < W; w++) m += cf[t0 + w] - loc[f];
          let r = (m / W) * invScaleZ[f];
          for (let c = 0; c < cols; c++) r -= P[f * cols + c] * scores[i * cols + c];
          res[i] = r * r;
        }
        const fit = fitTail(res, o.tailFraction, o.tailMargin);
        // A heavy-tailed sensor's residual inherits its heavy tail (the window mean of its own
        // reading dominates it).
        if (heavyF[f] && fit.xi < HEAVY_MIN_XI) fit.xi = HEAVY_MIN_XI;
        tails[4 * F + f] = fit;
      }
      o.onProgress?.(Math.floor((F + f0 + nc) / 2), F);
    }
  }
  const tailU = new Float32Array(R * F);
  const tailK = new Float32Array(R * F);
  const scoreA = new Float32Array(R * F);
  const scoreB = new Float32Array(R * F);
  for (let i = 0; i < R * F; i++) {
    const m = scoreMap(tails[i], pStat, o.threshold);
    tailU[i] = m.u;
    tailK[i] = m.k;
    if (statOff[i]) {
      // A disabled statistic scores 0 whatever its value, and its raw score (-1) never wins the
      // choice of the deciding statistic against an enabled one (raw > 0 whenever p < 1).
      scoreA[i] = 0;
      scoreB[i] = -1;
    } else {
      scoreA[i] = m.a;
      scoreB[i] = m.b;
    }
  }
  const severityScale = -Math.log10(pStat) / o.threshold;
  const tailParams = { nStats: R, tailU, tailK, scoreA, scoreB, severityScale };
  const params: FeaturewiseParams = linear
    ? {
        kind: "featurewise_ocsvm_linear",
        windowSize: W,
        nFeatures: F,
        invScale,
        weight: linWeight,
        rho,
        ...tailParams,
      }
    : {
        kind: "featurewise_ocsvm_svdd",
        windowSize: W,
        nFeatures: F,
        loc,
        invScaleD,
        basis: Float32Array.from(basis),
        invScale,
        center,
        select: statSelector(W),
        invScaleZ,
        crossBasis: (cross as NonNullable<typeof cross>).basis,
        crossCols: (cross as NonNullable<typeof cross>).cols,
        crossScale: (cross as NonNullable<typeof cross>).residualScale,
        ...tailParams,
      };
  const q = (a: Float64Array, p: number) =>
    round(a[Math.min(a.length - 1, Math.floor(p * a.length))]);
  const statNames: string[] = linear ? ["decision"] : [...SVDD_STATISTICS];
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
    calibration_split: `time: fit frames 0..${split.calStart - 1}, calibration windows from frame ${split.calStart}`,
    cal_fraction: o.calFraction,
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
            residual:
              "r_f^2, r = zbar - P t, zbar = window mean of (x - loc) * inv_scale_z, P the cross-sensor PCA loadings (SPE contribution), t the robust projection of zbar: clip(zbar, -6, 6), then 2 rejection steps (a sensor whose clipped value lies more than 4 residual scales and half the window's largest ratio from its prediction is replaced by that prediction), so gross readings stay out of the other sensors' residuals",
            combined: "score = max over the statistics; statistic = the one that decided it",
          },
    heldout_windows: split.cal.length,
    split: "in time: fit on the first part of the history, calibrate on the windows that follow it",
    tail_fraction: o.tailFraction,
    tail_margin_se: o.tailMargin,
    alpha_frame: o.alphaFrame,
    p_target: pTarget,
    p_target_per_statistic: pStat,
    threshold: o.threshold,
    mapping:
      "score = clip(threshold * ln(p) / ln(p_target_per_statistic), 0, 1), p = p_u * (1 + xi (s - u) / beta)^(-1/xi); max over statistics",
    onnx_form: "score = clip(scoreA * ln(max(1 + tailK * (s - tailU), 1e-30)) + scoreB, 0, 1)",
    severity: `-log10(p) of the deciding statistic = max(raw, 0) * ${round(severityScale)}, raw = the score before the clip; does not saturate`,
    tails: tailStats,
    ...(cross
      ? {
          cross_sensor: {
            components: cross.k,
            max_components: o.crossComponents,
            rule: "eigenvalue above the mean variance of one sensor (Kaiser-Guttman), at most max_components",
            edge: round(cross.edge),
            eigenvalues: cross.eigenvalues.map(round),
            frames_used: cross.rows,
          },
          heavy_tail_rule:
            "excess kurtosis of non-zero frame-to-frame changes > 0.5 => shape >= 0.6 (level, dynamics, residual), >= 0.3 (agitation)",
          heavy_tailed_features: heavyCount,
          drift_rule:
            o.baselineAlpha > 0
              ? `variance of the means of ${DRIFT_BLOCKS} consecutive blocks of the history / mean variance within a block > ${o.driftMax} => the sensor follows a running level (per stream, the mean of its last ${spanFor(o.baselineAlpha)} readings weighted (1 - ${o.baselineAlpha})^j) and the model sees its reading minus that level; if the deviation still drifts by the same rule, its level and residual are not judged and it is left out of the cross-sensor subspace`
              : `variance of the means of ${DRIFT_BLOCKS} consecutive blocks of the history / mean variance within a block > ${o.driftMax} => level and residual not judged, sensor left out of the cross-sensor subspace`,
          baseline_features: baseline?.features.length ?? 0,
          drifting_features: driftCount,
          quiet_rule: `off for a quantised sensor (more than ${QUANTISED_ZERO_SHARE * 100} % of its frame-to-frame changes exactly zero; agitation is off for it too) and for one whose normal windows already look stuck (sum_{k>=1} w_k^2 below 1e-6)`,
          quiet_disabled_features: quietOff,
          agitation_enabled_features: agitationOn,
        }
      : {}),
  };
  const typical = {
    description: `${TYPICAL_Q[0] * 100}th to ${TYPICAL_Q[1] * 100}th percentile of the sensor's readings in the fit part of the training history${baseline?.features.length ? " (for a sensor with a running level, see baseline: of its deviation from that level)" : ""}`,
    low: typLow,
    high: typHigh,
  };
  return {
    params,
    summary,
    calibration,
    statistics: statNames,
    typical,
    tails,
    ...(baseline?.features.length ? { baseline } : {}),
  };
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Six significant digits: enough for a displayed range, and a compact metadata file. */
function sig(x: number): number {
  return Number(x.toPrecision(6));
}

function quantileOfSorted(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

/**
 * Robust scale of a sensor's raw readings around `loc` (the cross-sensor stage's unit):
 * max(1.4826 x MAD, 0.5 x RMS deviation, a floor), as for the DCT coefficients.
 */
function robustScale(sorted: Float64Array, loc: number): number {
  const dev = Float64Array.from(sorted, (x) => Math.abs(x - loc)).sort();
  let ss = 0;
  for (const d of dev) ss += d * d;
  const n = dev.length;
  const mad = n % 2 === 1 ? dev[(n - 1) >> 1] : 0.5 * (dev[n / 2 - 1] + dev[n / 2]);
  return Math.max(1.4826 * mad, 0.5 * Math.sqrt(ss / n), Math.abs(loc) * 1e-6, 1e-9);
}

/**
 * How far a sensor's level wanders over the history: the variance of the means of `blocks`
 * consecutive blocks over the mean variance within a block. A stationary sensor whose memory is
 * short against a block scores about `blocks / frames` (a few hundredths at most); one that trends
 * or walks (a temperature following the weather) scores 1 or more, and its level in service will
 * leave any range the history shows.
 */
export function driftIndex(col: ArrayLike<number>, blocks: number): number {
  const nb = Math.floor(col.length / blocks);
  if (nb < 2) return 0;
  let within = 0;
  let sum = 0;
  let sumSq = 0;
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    for (let t = b * nb; t < (b + 1) * nb; t++) m += col[t];
    m /= nb;
    for (let t = b * nb; t < (b + 1) * nb; t++) within += (col[t] - m) ** 2;
    sum += m;
    sumSq += m * m;
  }
  within /= blocks * nb;
  const between = (sumSq - (sum * sum) / blocks) / (blocks - 1);
  if (!(within > 0)) return between > 0 ? Number.POSITIVE_INFINITY : 0;
  return between / within;
}

/** Window mean of the standardised readings `(x - loc) * invScaleZ` of the window at `t0`. */
export function windowMeanZ(
  values: Float32Array,
  F: number,
  t0: number,
  W: number,
  loc: Float32Array,
  invScaleZ: Float32Array,
  out: Float64Array,
): void {
  out.fill(0);
  for (let w = 0; w < W; w++) {
    const base = (t0 + w) * F;
    for (let f = 0; f < F; f++) out[f] += values[base + f] - loc[f];
  }
  for (let f = 0; f < F; f++) out[f] = (out[f] / W) * invScaleZ[f];
}
