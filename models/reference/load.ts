// Recovers model parameters from an ONNX file's initialisers plus its metadata.
import type { ModelMetadata } from "../../contracts/model.ts";
import {
  type FeaturewiseKind,
  type FeaturewiseParams,
  TENSOR_NAMES,
} from "../featurewise/params.ts";
import { readInitializers } from "../onnx/builder.ts";

/** Model kinds the reference scorer understands. */
export function isFeaturewiseKind(kind: string): kind is FeaturewiseKind {
  return kind in TENSOR_NAMES;
}

/**
 * Parameters of a model written by `npm run train`, read back from its ONNX bytes.
 *
 * @example const params = paramsFromOnnx(await readFile("models/featurewise_ocsvm.onnx"), meta);
 */
export function paramsFromOnnx(bytes: Uint8Array, meta: ModelMetadata): FeaturewiseParams {
  if (!isFeaturewiseKind(meta.kind))
    throw new TypeError(`no reference scorer for kind '${meta.kind}'`);
  const inits = readInitializers(bytes);
  const tensors: Record<string, Float32Array> = {};
  const dims: Record<string, number[]> = {};
  for (const name of TENSOR_NAMES[meta.kind]) {
    const t = inits.get(name);
    if (!t) throw new TypeError(`ONNX model lacks initialiser '${name}' of kind '${meta.kind}'`);
    tensors[name] = t.data;
    dims[name] = t.dims;
  }
  const { severityScale, ...perFeature } = tensors;
  return {
    kind: meta.kind,
    windowSize: meta.window_size,
    nFeatures: meta.n_features,
    nStats: tensors.tailU.length / meta.n_features,
    ...perFeature,
    severityScale: severityScale[0],
    ...(meta.kind === "featurewise_ocsvm_svdd" ? { crossCols: dims.crossBasis[1] } : {}),
  } as FeaturewiseParams;
}
