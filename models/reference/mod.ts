// Public reference scorer: plain TypeScript scoring of the committed models, no ONNX Runtime needed.
export type { FeaturewiseParams, LinearParams, SvddParams } from "../featurewise/params.ts";
export { isFeaturewiseKind, paramsFromOnnx } from "./load.ts";
export { type DetailedScores, scoreWindows, scoreWindowsDetailed } from "./score.ts";
