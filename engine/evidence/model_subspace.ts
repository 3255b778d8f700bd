// Reads the model's cross-sensor subspace (loadings, location, scale) out of its ONNX graph, once at load.
import onnxProto from "onnx-proto";
import type { CrossSubspace } from "../../scoring/related_sensors.ts";

const { onnx } = onnxProto;
const FLOAT = 1;

function floats(t: onnxProto.onnx.ITensorProto): Float32Array {
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    // Copied: the decoded buffer is the whole model's, and may not be 4-byte aligned.
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(raw.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  return Float32Array.from(t.floatData ?? []);
}

/**
 * The subspace of a graph exported with a cross-sensor stage (initialisers `crossBasis`
 * `[F, cols]`, `loc` and `invScaleZ` `[F]`), or `undefined` for a graph without one (then
 * alerts carry no `related`). Reading the graph this way needs no side file, so models trained
 * before alerts named related sensors give them too.
 *
 * @example const sub = crossSubspaceFromOnnx(await readFile("models/featurewise_ocsvm.onnx"), 25_000);
 */
export function crossSubspaceFromOnnx(
  bytes: Uint8Array,
  nFeatures: number,
): CrossSubspace | undefined {
  const model = onnx.ModelProto.decode(bytes);
  const wanted = new Map<string, onnxProto.onnx.ITensorProto>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType === FLOAT && ["crossBasis", "loc", "invScaleZ"].includes(t.name ?? "")) {
      wanted.set(t.name!, t);
    }
  }
  const basis = wanted.get("crossBasis");
  const loc = wanted.get("loc");
  const scale = wanted.get("invScaleZ");
  if (!basis || !loc || !scale) return undefined;
  const dims = (basis.dims ?? []).map(Number);
  if (dims.length !== 2 || dims[0] !== nFeatures) return undefined;
  const sub = {
    nFeatures,
    cols: dims[1],
    basis: floats(basis),
    loc: floats(loc),
    invScale: floats(scale),
  };
  if (sub.basis.length !== nFeatures * sub.cols || sub.loc.length !== nFeatures) return undefined;
  if (sub.invScale.length !== nFeatures) return undefined;
  return sub;
}
