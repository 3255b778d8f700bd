// Loads the model the engine's configuration names, as every scoring role does.
import type { EngineConfig } from "../../contracts/config.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { loadModel, type ScoringModel } from "./load_model.ts";

/** `MODEL_DIR/DEFAULT_MODEL_NAME` on `DEFAULT_DEVICE`, warmed for `INFERENCE_BATCH_SIZE`. */
export function modelFor(
  config: Pick<
    EngineConfig,
    "MODEL_DIR" | "DEFAULT_MODEL_NAME" | "DEFAULT_DEVICE" | "INFERENCE_BATCH_SIZE"
  >,
  log: Logger,
): Promise<ScoringModel> {
  return loadModel({
    dir: config.MODEL_DIR,
    name: config.DEFAULT_MODEL_NAME,
    device: config.DEFAULT_DEVICE,
    log,
    maxBatch: config.INFERENCE_BATCH_SIZE,
  });
}
