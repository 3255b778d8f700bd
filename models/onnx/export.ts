// Turns feature-wise model parameters into an ONNX graph: raw windows in, calibrated scores out.
import type { FeaturewiseParams, TailParams } from "../featurewise/params.ts";
import { GraphBuilder } from "./builder.ts";

export const INPUT_NAME = "windows";
export const OUTPUT_NAME = "scores";

/**
 * Builds the graph `[batch, window, features]` float32 -> `[batch, features]` float32 in [0, 1].
 * Every tensor is laid out `[.., features]` last so that the big axis stays contiguous.
 */
export function exportOnnx(params: FeaturewiseParams, docString = ""): Uint8Array {
  const g = new GraphBuilder();
  const W = params.windowSize;
  const F = params.nFeatures;
  const axis1 = g.int64s("axis_window", [1]);
  let s: string;
  if (params.kind === "featurewise_ocsvm_linear") {
    const z = g.node("Mul", [INPUT_NAME, g.floats("invScale", [F], params.invScale)]);
    const wz = g.node("Mul", [z, g.floats("weight", [W, F], params.weight)]);
    const dot = g.node("ReduceSum", [wz, axis1], { keepdims: 0 });
    s = g.node("Sub", [g.floats("rho", [F], params.rho), dot], {}, "nonconformity");
  } else {
    const c = g.node("Sub", [INPUT_NAME, g.floats("loc", [F], params.loc)]);
    const y = g.node("MatMul", [g.floats("basis", [W, W], params.basis), c]);
    const e = g.node("Sub", [
      g.node("Mul", [y, g.floats("invScale", [W, F], params.invScale)]),
      g.floats("center", [W, F], params.center),
    ]);
    s = g.node("ReduceSum", [g.node("Mul", [e, e]), axis1], { keepdims: 0 }, "nonconformity");
  }
  const out = calibrate(g, s, params, F);
  return g.build({
    graphName: params.kind,
    input: INPUT_NAME,
    inputDims: ["batch", W, F],
    output: out,
    outputDims: ["batch", F],
    docString,
  });
}

function calibrate(g: GraphBuilder, s: string, p: TailParams, F: number): string {
  const t = g.node("Sub", [s, g.floats("tailU", [F], p.tailU)]);
  const arg = g.node("Add", [
    g.node("Mul", [t, g.floats("tailK", [F], p.tailK)]),
    g.scalar("one", 1),
  ]);
  const logp = g.node("Log", [g.node("Max", [arg, g.scalar("tiny", 1e-30)])]);
  const raw = g.node("Add", [
    g.node("Mul", [logp, g.floats("scoreA", [F], p.scoreA)]),
    g.floats("scoreB", [F], p.scoreB),
  ]);
  return g.node("Clip", [raw, g.scalar("zero", 0), "one"], {}, OUTPUT_NAME);
}
