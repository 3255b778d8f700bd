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

/**
 * Every model the engine serves, in lane order: `DEFAULT_MODEL_NAME` first, then each model
 * `MODEL_ROUTES` names once, each its active version, checked and warmed. All or nothing: when
 * one cannot load, those loaded are closed and the {@link ModelLoadError} names the entry.
 */
export async function modelsFor(
  config: ModelConfig & Pick<EngineConfig, "MODEL_ROUTES">,
  log: Logger,
): Promise<{ models: ScoringModel[]; refs: VersionRef[]; registry: ModelRegistry }> {
  const names = [
    ...new Set([config.DEFAULT_MODEL_NAME, ...config.MODEL_ROUTES.map((r) => r.model)]),
  ];
  const models: ScoringModel[] = [];
  const refs: VersionRef[] = [];
  let registry: ModelRegistry | undefined;
  try {
    for (const name of names) {
      const loaded = await modelFor({ ...config, DEFAULT_MODEL_NAME: name }, log);
      models.push(loaded.model);
      refs.push(loaded.ref);
      registry ??= loaded.registry;
    }
  } catch (error) {
    await Promise.allSettled(models.map((m) => m.close()));
    throw error;
  }
  return { models, refs, registry: registry as ModelRegistry };
}
