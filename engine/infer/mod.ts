// Inference: model loading, execution provider choice, GPU detection.
export {
  type Device,
  type ExecutionProvider,
  ModelLoadError,
  openSession,
} from "./execution_provider.ts";
export { type LoadModelOptions, loadModel, type ScoringModel } from "./load_model.ts";
