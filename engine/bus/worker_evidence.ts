// A scale-out worker's incident context: per model, the history of the frames it took and the context built from it.
import type { EngineConfig } from "../../contracts/config.ts";
import { evidenceFor, historyShare } from "../evidence/from_config.ts";
import { type HistoryReport, type HistoryStore, historyReport } from "../evidence/history_store.ts";
import type { IncidentEvidence } from "../evidence/incident_evidence.ts";
import type { ServedVersion } from "./served_versions.ts";

type EvidenceConfig = Parameters<typeof evidenceFor>[0];

/**
 * What the single process's batcher and alert pipeline do for incident context, for a worker:
 * one history per model (its partitions' streams share it, within the model's share of
 * `EVIDENCE_HISTORY_MAX_MB` among the models configured at start; a model loaded later because a
 * frame named it takes one more such share) fed with every frame the worker takes, and the context (history,
 * related sensors, fault kind) the model's alert pipelines build from it. A version with the same
 * features (the same names, in order) and window size goes on with the history; another starts
 * one afresh. A partition taken over starts with the frames its replay reads (the previous
 * owner's history is not handed over).
 *
 * @example const context = new WorkerEvidence(config, 1); pipeline.useModel({ ...model, evidence: context.for("m", served) });
 */
export class WorkerEvidence {
  readonly #config: EvidenceConfig;
  readonly #byModel = new Map<
    string,
    {
      version: string;
      featureNames: readonly string[];
      windowSize: number;
      history: HistoryStore;
      evidence: IncidentEvidence;
    }
  >();

  constructor(
    config: EvidenceConfig & Pick<EngineConfig, "EVIDENCE_HISTORY_MAX_MB">,
    models: number,
  ) {
    this.#config = historyShare(config, Math.max(1, models));
  }

  /** The context model `name` builds its alerts with while `served` scores them. */
  for(name: string, served: ServedVersion): IncidentEvidence {
    const had = this.#byModel.get(name);
    if (had?.version === served.version) return had.evidence;
    // Names, not only how many: a version whose sensors moved reads column `f` as another
    // sensor, so the kept frames would be drawn under the wrong names (as the single process's
    // activation has it, `sameSpec`).
    const names = served.meta.feature_names;
    const same =
      had !== undefined &&
      had.featureNames.length === names.length &&
      had.featureNames.every((name, i) => name === names[i]) &&
      had.windowSize === served.meta.window_size;
    const made = evidenceFor(
      this.#config,
      served.meta,
      served.onnxPath,
      same ? had.history : undefined,
    );
    this.#byModel.set(name, {
      version: served.version,
      featureNames: names,
      windowSize: served.meta.window_size,
      ...made,
    });
    return made.evidence;
  }

  /** Where its models' history budget stands together (`GET /stats` `evidence`). */
  report(): HistoryReport {
    return historyReport([...this.#byModel.values()].map((m) => m.history));
  }

  /** Keeps a frame model `name` took (one of its served version's size) for incident history. */
  record(name: string, streamId: string, timestamp: number, values: Float32Array): void {
    const had = this.#byModel.get(name);
    if (had && values.length === had.evidence.nFeatures) {
      had.history.record(streamId, timestamp, values);
    }
  }
}
