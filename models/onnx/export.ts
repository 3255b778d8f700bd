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
  let s: string;
  if (params.kind === "featurewise_ocsvm_linear") {
    const z = g.node("Mul", [INPUT_NAME, g.floats("invScale", [F], params.invScale)]);
    const wz = g.node("Mul", [z, g.floats("weight", [W, F], params.weight)]);
    const dot = g.node("ReduceSum", [wz, g.int64s("axis_window", [1])], { keepdims: 0 });
    s = g.node("Sub", [g.floats("rho", [F], params.rho), dot], {}, "nonconformity");
  } else {
    const c = g.node("Sub", [INPUT_NAME, g.floats("loc", [F], params.loc)]);
    const y = g.node("MatMul", [g.floats("basis", [W, W], params.basis), c]);
    const w = g.node("Mul", [y, g.floats("invScale", [W, F], params.invScale)]);
    const e = g.node("Sub", [w, g.floats("center", [W, F], params.center)]);
    // [2, W] x [B, W, F] -> [B, 2, F]: level (w_0 - c_0)^2 and dynamics sum_{k>=1} (w_k - c_k)^2.
    const energy = g.node("MatMul", [
      g.floats("select", [2, W], params.select),
      g.node("Mul", [e, e]),
    ]);
    // Quiet: -ln(sum_{k>=1} w_k^2 + eps), the uncentred dynamics energy (row 1 of the selector).
    const selDyn = g.floats("select_dynamics", [1, W], params.select.subarray(W, 2 * W));
    const rawDyn = g.node("MatMul", [selDyn, g.node("Mul", [w, w])]);
    const quiet = g.node("Neg", [
      g.node("Log", [g.node("Add", [rawDyn, g.scalar("quiet_eps", QUIET_EPS)])]),
    ]);
    // Agitation: min over the window's changes of ((x_j - x_{j-1}) * invScaleD)^2, [B, 1, F].
    const axis1 = g.int64s("axis_window", [1]);
    const later = g.node("Slice", [c, g.int64s("from_1", [1]), g.int64s("to_w", [W]), axis1]);
    const from0 = g.int64s("from_0", [0]);
    const earlier = g.node("Slice", [c, from0, g.int64s("to_w1", [W - 1]), axis1]);
    const d = g.node("Mul", [
      g.node("Sub", [later, earlier]),
      g.floats("invScaleD", [F], params.invScaleD),
    ]);
    const agitation = g.node("ReduceMin", [g.node("Mul", [d, d])], { axes: [1], keepdims: 1 });
    // Cross-sensor residual: zbar = window mean of (x - loc) * invScaleZ, [B, F]; its part off the
    // PCA subspace r = zbar - (zbar P) P^T; statistic r^2 per sensor, [B, 1, F]. The window mean
    // is DCT coefficient 0 over sqrt(W) (already computed), and two thin Gemms ([B, F] x [F, k]
    // and back) replace any F x F matrix.
    const flat = g.int64s("shape_flat", [-1, F]);
    const y0 = g.node("Slice", [y, from0, g.int64s("to_1", [1]), axis1]);
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
    let z = g.node("Clip", [
      zbarW,
      g.scalar("clip_low", -PROJECTION_CLIP),
      g.scalar("clip_high", PROJECTION_CLIP),
    ]);
    let rejected = "";
    for (let it = 0; it < PROJECTION_ITERATIONS; it++) {
      // The worst sensors (ratio above REJECT_C and half the window's largest) are replaced by
      // their prediction from the others for the rest of the window (treated as missing).
      const pred = g.node("Gemm", [g.node("Gemm", [z, P]), P], { transB: 1 });
      const ratio = g.node("Div", [g.node("Abs", [g.node("Sub", [zbarW, pred])]), S]);
      const worst = g.node("ReduceMax", [ratio], { axes: [1], keepdims: 1 });
      const limit = g.node("Max", [g.node("Mul", [worst, half]), rejectC]);
      const far = g.node("Greater", [ratio, limit]);
      rejected = rejected ? g.node("Or", [rejected, far]) : far;
      z = g.node("Where", [rejected, pred, zbarW]);
    }
    const recon = g.node("Gemm", [g.node("Gemm", [z, P]), P], { transB: 1 });
    const r = g.node("Sub", [zbarW, recon]);
    const residual = g.node("Reshape", [g.node("Mul", [r, r]), g.int64s("shape_rows", [-1, 1, F])]);
    s = g.node("Concat", [energy, quiet, agitation, residual], { axis: 1 }, "statistics");
  }
  const raw = calibrate(g, s, params, F);
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
 * The unclipped score of the deciding statistic, `[B, F]`, and (as node `statistic`) its index.
 * Tail tensors are [nStats, F]; with several statistics the score is their maximum.
 */
function calibrate(g: GraphBuilder, s: string, p: TailParams, F: number): string {
  const dims = p.nStats === 1 ? [F] : [p.nStats, F];
  const t = g.node("Sub", [s, g.floats("tailU", dims, p.tailU)]);
  const arg = g.node("Add", [
    g.node("Mul", [t, g.floats("tailK", dims, p.tailK)]),
    g.scalar("one", 1),
  ]);
  const logp = g.node("Log", [g.node("Max", [arg, g.scalar("tiny", 1e-30)])]);
  let raw = g.node("Add", [
    g.node("Mul", [logp, g.floats("scoreA", dims, p.scoreA)]),
    g.floats("scoreB", dims, p.scoreB),
  ]);
  if (p.nStats > 1) {
    // ArgMax keeps the first of tied statistics, as the reference scorer does.
    g.node("ArgMax", [raw], { axis: 1, keepdims: 0 }, STATISTIC_NAME);
    raw = g.node("ReduceMax", [raw], { axes: [1], keepdims: 0 });
  } else {
    // One statistic: it always decides (index 0), [B, F] int64.
    g.node("Cast", [g.node("Mul", [raw, g.scalar("zero_index", 0)])], { to: 7 }, STATISTIC_NAME);
  }
  return raw;
}
