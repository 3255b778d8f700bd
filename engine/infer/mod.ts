// Inference: model loading, execution provider choice, GPU detection, the model registry on disk.
export {
  type Device,
  type ExecutionProvider,
  ModelLoadError,
  openSession,
} from "./execution_provider.ts";
export { type LoadModelOptions, loadModel, type ScoringModel } from "./load_model.ts";
export { activeOrSeed, NatsModelRegistry, NatsRegistryError } from "./nats_registry.ts";
export {
  type Activation,
  ModelRegistry,
  RegistryError,
  type RegistryModel,
  type VersionRef,
  verifyVersion,
} from "./registry.ts";
