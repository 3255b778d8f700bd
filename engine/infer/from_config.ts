// Loads the model the engine's configuration names, from the registry, as every scoring role does.
import type { EngineConfig } from "../../contracts/config.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { ModelLoadError } from "./execution_provider.ts";
import { loadModel, type ScoringModel } from "./load_model.ts";
import { ModelRegistry, type VersionRef, verifyVersion } from "./registry.ts";

type ModelConfig = Pick<
  EngineConfig,
  | "MODEL_DIR"
  | "DEFAULT_MODEL_NAME"
  | "DEFAULT_DEVICE"
  | "INFERENCE_BATCH_SIZE"
  | "INFERENCE_SESSIONS"
>;

/** Loads a version on `DEFAULT_DEVICE` in `INFERENCE_SESSIONS`, warmed for `INFERENCE_BATCH_SIZE`. */
export function loadVersion(
  config: ModelConfig,
  ref: VersionRef,
  log: Logger,
  metadata?: ModelMetadata,
): Promise<ScoringModel> {
  return loadModel({
    metadata,
    dir: ref.dir,
    name: ref.name,
    device: config.DEFAULT_DEVICE,
    log,
    maxBatch: config.INFERENCE_BATCH_SIZE,
    sessions: config.INFERENCE_SESSIONS,
  });
}

/**
 * The active version of `DEFAULT_MODEL_NAME` in the registry under `MODEL_DIR` (a flat
 * `NAME.onnx` + `NAME.json` is its one version), checked (graph and metadata agree) and loaded.
 * Throws a {@link ModelLoadError} naming the entry when it cannot.
 */
export async function modelFor(
  config: ModelConfig,
  log: Logger,
): Promise<{ model: ScoringModel; ref: VersionRef; registry: ModelRegistry }> {
  const registry = new ModelRegistry(config.MODEL_DIR);
  let ref: VersionRef;
  let metadata: ModelMetadata;
  try {
    ref = await registry.resolve(config.DEFAULT_MODEL_NAME);
    metadata = await verifyVersion(ref);
  } catch (error) {
    throw new ModelLoadError(
      `cannot load model ${config.DEFAULT_MODEL_NAME}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return { model: await loadVersion(config, ref, log, metadata), ref, registry };
}
