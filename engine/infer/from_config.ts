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

/** A version checked (graph and metadata agree) and loaded. */
async function loadChecked(
  config: ModelConfig,
  registry: ModelRegistry,
  name: string,
  version: string | undefined,
  log: Logger,
): Promise<{ model: ScoringModel; ref: VersionRef }> {
  let ref: VersionRef;
  let metadata: ModelMetadata;
  try {
    ref = await registry.resolve(name, version);
    metadata = await verifyVersion(ref);
  } catch (error) {
    throw new ModelLoadError(`cannot load model ${name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { model: await loadVersion(config, ref, log, metadata), ref };
}

/**
 * The active version of `DEFAULT_MODEL_NAME` in the registry under `MODEL_DIR` (a flat
 * `NAME.onnx` + `NAME.json` is its one version), checked (graph and metadata agree) and loaded.
 * When the active version cannot be (corrupt, truncated, gone, a load that fails) and the
 * pointer's `from` (the rollback target) can, that one is served instead and logged at error,
 * the pointer left as it is: an operator decides, and activating a version repairs it (the
 * engine's `GET /models` shows the pointer's version as `registry_pointer`, not followed).
 * Throws a {@link ModelLoadError} naming the entry when neither can.
 */
export async function modelFor(
  config: ModelConfig,
  log: Logger,
): Promise<{ model: ScoringModel; ref: VersionRef; registry: ModelRegistry }> {
  const registry = new ModelRegistry(config.MODEL_DIR);
  const name = config.DEFAULT_MODEL_NAME;
  try {
    return { ...(await loadChecked(config, registry, name, undefined, log)), registry };
  } catch (error) {
    // No readable pointer (a flat model, a broken ACTIVE.json): no rollback target is known.
    const pointer = await registry.activeRecord(name).catch(() => undefined);
    const from = pointer?.from;
    if (!pointer || !from || from === pointer.version) throw error;
    let loaded: { model: ScoringModel; ref: VersionRef };
    try {
      loaded = await loadChecked(config, registry, name, from, log);
    } catch (fromError) {
      throw new ModelLoadError(
        `${(error as Error).message}; its rollback target ${from} (the pointer's from) cannot be loaded either: ${(fromError as Error).message}`,
        { cause: error },
      );
    }
    log.error(
      "the active version cannot be loaded; serving the pointer's rollback target (its from) instead until a version is activated",
      error as Error,
      { model: name, version: pointer.version, serving: from },
    );
    return { ...loaded, registry };
  }
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
