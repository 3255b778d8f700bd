// Builds the scheduled retraining from the engine's configuration (RETRAIN_EVERY_H), or says why there is none.
import type { EngineConfig } from "../../contracts/config.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { historyDirOf } from "../history/mod.ts";
import { runRetrainChild } from "./retrain_child.ts";
import { RetrainScheduler } from "./retrain_scheduler.ts";

/** The settings the retraining CLI reads, from the engine's: the same registry, history and gate. */
export function retrainEnvOf(config: EngineConfig): Record<string, string> {
  return {
    MODEL_DIR: config.MODEL_DIR,
    HISTORY_DIR: historyDirOf(config),
    DATA_DIR: config.DATA_DIR,
    RETRAIN_PROMOTE: config.RETRAIN_PROMOTE,
    ANOMALY_THRESHOLD: String(config.ANOMALY_THRESHOLD),
    INCIDENT_CONFIRM_K: String(config.INCIDENT_CONFIRM_K),
    INCIDENT_CONFIRM_N: String(config.INCIDENT_CONFIRM_N),
    INCIDENT_QUIET_WINDOWS: String(config.INCIDENT_QUIET_WINDOWS),
    DEFAULT_DEVICE: config.DEFAULT_DEVICE,
  };
}

/**
 * The single-process engine's retraining schedule; undefined when `RETRAIN_EVERY_H` is 0.
 * `models` lists the models served at the moment a round starts.
 */
export function retrainSchedulerFor(
  config: EngineConfig,
  deps: { log: Logger; models: () => string[] },
): RetrainScheduler | undefined {
  if (config.RETRAIN_EVERY_H === 0) return undefined;
  const env = retrainEnvOf(config);
  deps.log.info("scheduled retraining on", {
    every_h: config.RETRAIN_EVERY_H,
    promote: config.RETRAIN_PROMOTE,
  });
  return new RetrainScheduler({
    everyH: config.RETRAIN_EVERY_H,
    models: deps.models,
    run: (model, signal) => runRetrainChild({ model, env, signal }),
    log: deps.log,
  });
}

/**
 * Under scale-out no process retrains on a schedule: workers record no history yet and nothing
 * would let only one of them run. Logs that once when `RETRAIN_EVERY_H` asks for it; returns
 * whether it did.
 */
export function refuseRetrainUnderScaleOut(config: EngineConfig, log: Logger): boolean {
  if (config.RETRAIN_EVERY_H === 0 || config.FRAME_BUS !== "nats") return false;
  log.warn(
    "scheduled retraining is off under scale-out (FRAME_BUS=nats): workers record no training history and hold no retraining lease; run `npm run retrain` by hand against the registry",
    { every_h: config.RETRAIN_EVERY_H },
  );
  return true;
}
