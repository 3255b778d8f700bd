// Frame ingest as the engine's configuration describes it (single-process engine and ingest replica).
import type { EngineConfig } from "../../contracts/config.ts";
import { createFeatureLayout } from "./feature_layout.ts";
import { createIngestor, type Ingestor } from "./ingestor.ts";

/** An ingestor for the model's features with the configured body limits and decode workers. */
export function ingestorFor(config: EngineConfig, featureNames: readonly string[]): Ingestor {
  return createIngestor({
    layout: createFeatureLayout(featureNames),
    limits: {
      maxBodyBytes: config.MAX_BODY_BYTES,
      maxDecompressedBytes: config.MAX_DECOMPRESSED_BYTES,
      bodyTimeoutMs: config.BODY_TIMEOUT_MS,
    },
    workers: config.INGEST_WORKERS,
  });
}
