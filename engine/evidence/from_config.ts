// Builds the history store and incident context of one model from the engine's configuration.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { EngineConfig } from "../../contracts/config.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import { HistoryStore } from "./history_store.ts";
import { IncidentEvidence } from "./incident_evidence.ts";
import { crossSubspaceFromOnnx } from "./model_subspace.ts";

type EvidenceConfig = Pick<
  EngineConfig,
  "EVIDENCE_HISTORY_FRAMES" | "EVIDENCE_HISTORY_MAX_MB" | "EVIDENCE_ALERT_MAX_BYTES"
> &
  Partial<Pick<EngineConfig, "INFERENCE_BATCH_SIZE">>;

/**
 * The history store the batcher feeds (`EVIDENCE_HISTORY_FRAMES` per stream within
 * `EVIDENCE_HISTORY_MAX_MB`; streams without a ring share one of `INFERENCE_BATCH_SIZE` frames,
 * enough to keep a batch's frames until it is scored) and the incident context the alert
 * pipeline builds from it, with the cross-sensor subspace read once out of the model's graph at
 * `onnxPath` (none when the graph has no cross-sensor stage: alerts then carry no `related`).
 *
 * @example const { history, evidence } = evidenceFor(config, meta, "models/featurewise_ocsvm.onnx");
 */
export function evidenceFor(
  config: EvidenceConfig,
  meta: ModelMetadata,
  onnxPath: string,
  /** The store a new version of the same features goes on with (a model activation). */
  keep?: HistoryStore,
): { history: HistoryStore; evidence: IncidentEvidence } {
  const history =
    keep ??
    new HistoryStore({
      frames: config.EVIDENCE_HISTORY_FRAMES,
      features: meta.n_features,
      maxBytes: config.EVIDENCE_HISTORY_MAX_MB * 1024 * 1024,
      sharedFrames: config.INFERENCE_BATCH_SIZE,
    });
  const evidence = new IncidentEvidence({
    store: history,
    featureNames: meta.feature_names,
    windowSize: meta.window_size,
    typical: meta.typical,
    baseline: meta.baseline,
    subspace: crossSubspaceFromOnnx(readFileSync(onnxPath), meta.n_features),
    maxBytes: config.EVIDENCE_ALERT_MAX_BYTES,
  });
  return { history, evidence };
}

/** The graph file of a registry version (or a flat model). */
export function onnxPathOf(ref: { dir: string; name: string }): string {
  return join(ref.dir, `${ref.name}.onnx`);
}

/** Each of `lanes` models' share of the one `EVIDENCE_HISTORY_MAX_MB` budget. */
export function historyShare<T extends EvidenceConfig>(config: T, lanes: number): T {
  return { ...config, EVIDENCE_HISTORY_MAX_MB: config.EVIDENCE_HISTORY_MAX_MB / lanes };
}
