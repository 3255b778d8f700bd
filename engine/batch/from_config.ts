// Builds the window scorer from the engine's configuration: one place for every role.
import type { EngineConfig } from "../../contracts/config.ts";
import { severityScale } from "../../scoring/flagged_sensors.ts";
import { WindowShape } from "../../scoring/window_features.ts";
import type { ScoringModel } from "../infer/load_model.ts";
import { WindowScorer } from "./window_scorer.ts";

/** The window scorer a role's configuration asks for, over `model`. */
export function windowScorerFor(
  config: Pick<EngineConfig, "INFERENCE_BATCH_SIZE" | "ANOMALY_THRESHOLD" | "MAX_ALERT_FEATURES">,
  model: ScoringModel,
): WindowScorer {
  return new WindowScorer({
    model,
    shape: WindowShape.forModel(model.metadata),
    maxBatch: config.INFERENCE_BATCH_SIZE,
    flag: {
      threshold: config.ANOMALY_THRESHOLD,
      maxFeatures: config.MAX_ALERT_FEATURES,
      severityScale: severityScale(model.metadata),
    },
  });
}
