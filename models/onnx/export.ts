// Turns feature-wise model parameters into an ONNX graph: raw windows in, calibrated scores out.
import { QUIET_EPS } from "../featurewise/fit_svdd.ts";
import type { FeaturewiseParams, TailParams } from "../featurewise/params.ts";
import { PROJECTION_CLIP, PROJECTION_ITERATIONS, REJECT_C } from "../featurewise/pca.ts";
import { GraphBuilder } from "./builder.ts";

export const INPUT_NAME = "windows";
export const OUTPUT_NAME = "scores";
export const SEVERITY_NAME = "severity";
export const STATISTIC_NAME = "statistic";

/**
 * Builds the graph `[batch, window, features]` float32 -> `scores` `[batch, features]` float32 in
 * [0, 1], `severity` `[batch, features]` float32 (-log10 of the deciding statistic's fitted tail
 * probability) and `statistic` `[batch, features]` int64 (which statistic decided).
 * Every tensor is laid out `[.., features]` last so that the big axis stays contiguous.
 */
export function exportOnnx(params: FeaturewiseParams, docString = ""): Uint8Array {
  const g = new GraphBuilder();
  const W = params.windowSize;
  const F = params.nFeatures;
  // The statistics, each [B, F] (linear) or [B, 1, F] (default), in index order.
  let stats: Statistic[];
  if (params.kind === "featurewise_ocsvm_linear") {
    const z = g.node("Mul", [INPUT_NAME, g.floats("invScale", [F], params.invScale)]);
    const wz = g.node("Mul", [z, g.floats("weight", [W, F], params.weight)]);
    const dot = g.node("ReduceSum", [wz, g.int64s("axis_window", [1])], { keepdims: 0 });
    stats = [
      { tensor: g.node("Sub", [g.floats("rho", [F], params.rho), dot], {}, "nonconformity") },
    ];
  } else {
    const c = g.node("Sub", [INPUT_NAME, g.floats("loc", [F], params.loc)]);
    const y = g.node("MatMul", [g.floats("basis", [W, W], params.basis), c]);
    const w = g.node("Mul", [y, g.floats("invScale", [W, F], params.invScale)]);
    const e = g.node("Sub", [w, g.floats("center", [W, F], params.center)]);
    // Level (w_0 - c_0)^2 and dynamics sum_{k>=1} (w_k - c_k)^2, each [B, 1, F].
    const ee = g.node("Mul", [e, e]);
    const axis1 = g.int64s("axis_window", [1]);
    const from0 = g.int64s("from_0", [0]);
    const to1 = g.int64s("to_1", [1]);
    const level = g.node("Slice", [ee, from0, to1, axis1]);
    const selDyn = g.floats("select_dynamics", [1, W], params.select.subarray(W, 2 * W));
    const dynamics = g.node("MatMul", [selDyn, ee]);
    // Quiet: -ln(sum_{k>=1} w_k^2 + eps), the uncentred dynamics energy.
    const rawDyn = g.node("MatMul", [selDyn, g.node("Mul", [w, w])]);
    // ln(energy + eps); the statistic is its negation, which the calibration applies (one pass
    // fewer than a Neg).
    const logEnergy = g.node("Log", [g.node("Add", [rawDyn, g.scalar("quiet_eps", QUIET_EPS)])]);
    const quiet: Statistic = { tensor: logEnergy, negated: true };
    // Agitation: min over the window's changes of ((x_j - x_{j-1}) * invScaleD)^2, [B, 1, Fa],
    // computed only for the sensors it is on for (heavy-tailed ones, about a tenth): the others'
    // raw score is -1 whatever their value, so the graph gathers the few and scatters them back.
    const on = enabledFeatures(params, AGITATION);
    let agitation: Statistic = { tensor: "", features: on };
    if (on.length > 0) {
      const xa = g.node("Gather", [INPUT_NAME, g.int64s("agitation_features", on)], { axis: 2 });
      const later = g.node("Slice", [xa, g.int64s("from_1", [1]), g.int64s("to_w", [W]), axis1]);
      const earlier = g.node("Slice", [xa, from0, g.int64s("to_w1", [W - 1]), axis1]);
      // min_j (d_j s)^2 = (s min_j |d_j|)^2 exactly in float32 (rounding is monotone and
      // fl(|d| s) = |fl(d s)|), with the scaling and the square on one row instead of W - 1.
      const smallest = g.node("ReduceMin", [g.node("Abs", [g.node("Sub", [later, earlier])])], {
        axes: [1],
        keepdims: 1,
      });
      const d = g.node("Mul", [
        smallest,
        g.floats("invScaleD", [on.length], pick(params.invScaleD, on)),
      ]);
      agitation = { tensor: g.node("Mul", [d, d]), features: on };
    }
    // Cross-sensor residual: zbar = window mean of (x - loc) * invScaleZ, [B, F]; its part off the
    // PCA subspace r = zbar - (zbar P) P^T; statistic r^2 per sensor, [B, 1, F]. The window mean
    // is DCT coefficient 0 over sqrt(W) (already computed), and two thin Gemms ([B, F] x [F, k]
    // and back) replace any F x F matrix.
    const flat = g.int64s("shape_flat", [-1, F]);
    const y0 = g.node("Slice", [y, from0, to1, axis1]);
    const zbar = g.node("Reshape", [
      g.node("Mul", [y0, g.floats("invScaleZ", [F], params.invScaleZ)]),
      flat,
    ]);
    const zbarW = g.node("Mul", [zbar, g.scalar("inv_sqrt_window", 1 / Math.sqrt(W))]);
    const P = g.floats("crossBasis", [F, params.crossCols], params.crossBasis);
    // Robust projection (see PROJECTION_CLIP): a clipped start, then rejection steps, so one gross
    // reading does not move the projection and every other sensor's residual with it.
    const S = g.floats("crossScale", [F], params.crossScale);
    const rejectC = g.scalar("reject_c", REJECT_C);
    const half = g.scalar("half", 0.5);
    const clipped = g.node("Clip", [
      zbarW,
      g.scalar("clip_low", -PROJECTION_CLIP),
      g.scalar("clip_high", PROJECTION_CLIP),
    ]);
    let z = clipped;
    let rejected = "";
    for (let it = 0; it < PROJECTION_ITERATIONS; it++) {
      // The worst sensors (ratio above REJECT_C and half the window's largest) are replaced by
      // their prediction from the others for the rest of the window (treated as missing).
      const pred = g.node("Gemm", [g.node("Gemm", [z, P]), P], { transB: 1 });
      const ratio = g.node("Div", [g.node("Abs", [g.node("Sub", [clipped, pred])]), S]);
      const worst = g.node("ReduceMax", [ratio], { axes: [1], keepdims: 1 });
      const limit = g.node("Max", [g.node("Mul", [worst, half]), rejectC]);
      const far = g.node("Greater", [ratio, limit]);
      rejected = rejected ? g.node("Or", [rejected, far]) : far;
      z = g.node("Where", [rejected, pred, clipped]);
    }
    const recon = g.node("Gemm", [g.node("Gemm", [z, P]), P], { transB: 1 });
    const r = g.node("Sub", [zbarW, recon]);
    const residual = g.node("Reshape", [g.node("Mul", [r, r]), g.int64s("shape_rows", [-1, 1, F])]);
    stats = [level, dynamics, quiet, agitation, residual].map((t) =>
      typeof t === "string" ? { tensor: t } : t,
    );
  }
  const raw = calibrate(g, stats, params, F);
  const scores = g.node("Clip", [raw, g.scalar("zero", 0), "one"], {}, OUTPUT_NAME);
  // Severity -log10(p) = max(raw, 0) * severityScale: the mapping is linear in ln p, so this is
  // the score before the clip, rescaled; it keeps growing where the score stops at 1.
  g.node(
    "Mul",
    [g.node("Max", [raw, "zero"]), g.scalar("severityScale", params.severityScale)],
    {},
    SEVERITY_NAME,
  );
  return g.build({
    graphName: params.kind,
    input: INPUT_NAME,
    inputDims: ["batch", W, F],
    outputs: [
      { name: scores, dims: ["batch", F] },
      { name: SEVERITY_NAME, dims: ["batch", F] },
      { name: STATISTIC_NAME, dims: ["batch", F], int64: true },
    ],
    docString,
  });
}

/**
 * A statistic's tensor, computed for every sensor or (`features`) only for those listed;
 * `negated`: the tensor holds minus the statistic (the calibration negates it).
 */
interface Statistic {
  tensor: string;
  features?: number[];
  negated?: boolean;
}

/** ONNX TensorProto data types used by Cast. */
const INT32 = 6;
const INT64 = 7;

/** Index of the agitation statistic among the default model's statistics. */
const AGITATION = 3;

/** Sensors a statistic is on for (a statistic that is off has scoreA 0 and scoreB -1). */
function enabledFeatures(p: TailParams & { nFeatures: number }, stat: number): number[] {
  const F = p.nFeatures;
  const on: number[] = [];
  for (let f = 0; f < F; f++) {
    const i = stat * F + f;
    if (!(p.scoreA[i] === 0 && p.scoreB[i] === -1)) on.push(f);
  }
  return on;
}

const pick = (values: Float32Array, at: number[]) => Float32Array.from(at, (f) => values[f]);

/**
 * The unclipped score of the deciding statistic, `[B, F]`, and (as node `statistic`) its index.
 * Each statistic is calibrated on its own row of the tail tensors `[nStats, F]`; the score is
 * their maximum (a variadic Max), and the index the first statistic equal to it, counted from
 * comparisons (ArgMax on `[B, nStats, F]` reduces across the strided axis and cost as much as the
 * whole calibration; a chain of Where with broadcast indices nearly as much).
 */
function calibrate(g: GraphBuilder, stats: Statistic[], p: TailParams, F: number): string {
  const one = g.scalar("one", 1);
  const tiny = g.scalar("tiny", 1e-30);
  const raws = stats.map((stat, i) => {
    const on = stat.features;
    const n = on ? on.length : F;
    const values = (all: Float32Array) => {
      const part = stats.length === 1 ? all : all.subarray(i * F, (i + 1) * F);
      return on ? pick(part, on) : part;
    };
    const row = (name: string, all: Float32Array) =>
      g.floats(stats.length === 1 ? name : `${name}_${i}`, [n], values(all));
    if (on && on.length === 0) {
      // Off for every sensor: raw -1 everywhere, [B, 1, F].
      return g.filled(g.node("Shape", [stats[0].tensor]), -1);
    }
    // 1 + k (s - u). The multi-statistic graph computes it as s k + (1 - u k), two passes
    // instead of three (with `negated` the tensor holds -s, so its slope is -k); the linear
    // model's graph keeps tailU and tailK, which the reference scorer reads back from it.
    let arg: string;
    if (stats.length === 1) {
      const t = g.node("Sub", [stat.tensor, row("tailU", p.tailU)]);
      arg = g.node("Add", [g.node("Mul", [t, row("tailK", p.tailK)]), one]);
    } else {
      const u = values(p.tailU);
      const k = values(p.tailK);
      const sign = stat.negated ? -1 : 1;
      arg = g.node("Add", [
        g.node("Mul", [
          stat.tensor,
          g.floats(
            `tailSlope_${i}`,
            [n],
            k.map((x) => sign * x),
          ),
        ]),
        g.floats(
          `tailOffset_${i}`,
          [n],
          u.map((x, j) => 1 - x * k[j]),
        ),
      ]);
    }
    const logp = g.node("Log", [g.node("Max", [arg, tiny])]);
    const raw = g.node("Add", [
      g.node("Mul", [logp, row("scoreA", p.scoreA)]),
      row("scoreB", p.scoreB),
    ]);
    if (!on) return raw;
    // Back to every sensor: -1 (off) where the statistic was not computed.
    const full = g.filled(g.node("Shape", [stats[0].tensor]), -1);
    const where = g.node("Expand", [
      g.int64s(`features_${i}`, on, [1, 1, on.length]),
      g.node("Shape", [raw]),
    ]);
    return g.node("ScatterElements", [full, where, raw], { axis: 2 });
  });
  if (raws.length === 1) {
    // One statistic: it always decides (index 0), [B, F] int64.
    g.node(
      "Cast",
      [g.node("Mul", [raws[0], g.scalar("zero_index", 0)])],
      { to: INT64 },
      STATISTIC_NAME,
    );
    return raws[0];
  }
  const flat = g.int64s("shape_out", [-1, F]);
  const best = g.node("Max", raws);
  // First of tied statistics, as the reference scorer: the number of leading statistics that are
  // all below the best, sum_i AND_{j<=i} (raw_j < best), from 1-byte comparisons.
  let below = "";
  const counts: string[] = [];
  for (let i = 0; i < raws.length - 1; i++) {
    const lt = g.node("Less", [raws[i], best]);
    below = below ? g.node("And", [below, lt]) : lt;
    counts.push(g.node("Cast", [below], { to: INT32 }));
  }
  // Counted in int32 (half the bytes of int64 per pass), widened once, after a Reshape that
  // costs nothing on an intermediate (on the output it was a copy).
  const index = counts.reduce((a, b) => g.node("Add", [a, b]));
  g.node("Cast", [g.node("Reshape", [index, flat])], { to: INT64 }, STATISTIC_NAME);
  return g.node("Reshape", [best, flat]);
}
