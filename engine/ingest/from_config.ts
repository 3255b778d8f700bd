// Frame ingest as the engine's configuration describes it (single-process engine and ingest replica).
import type { EngineConfig } from "../../contracts/config.ts";
import { createFeatureLayout } from "./feature_layout.ts";
import { createIngestor, type Ingestor } from "./ingestor.ts";
import { ModelLayouts } from "./model_layouts.ts";

/**
 * An ingestor with the configured body limits and decode workers, for one model's features or
 * for the layouts of several routed models.
 */
export function ingestorFor(
  config: EngineConfig,
  features: readonly string[] | ModelLayouts,
): Ingestor {
  return createIngestor({
    layout: features instanceof ModelLayouts ? features : createFeatureLayout(features),
    limits: {
      maxBodyBytes: config.MAX_BODY_BYTES,
      maxDecompressedBytes: config.MAX_DECOMPRESSED_BYTES,
      bodyTimeoutMs: config.BODY_TIMEOUT_MS,
    },
    workers: config.INGEST_WORKERS,
  });
}

/** The layouts of the engine's lanes (models in lane order) with `MODEL_ROUTES`. */
export function modelLayoutsFor(
  config: Pick<EngineConfig, "MODEL_ROUTES">,
  models: readonly { name: string; feature_names: readonly string[] }[],
): ModelLayouts {
  return new ModelLayouts({
    models: models.map((m) => ({ name: m.name, names: m.feature_names })),
    routes: config.MODEL_ROUTES,
  });
}
