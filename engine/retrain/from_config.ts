// Builds the retraining runner from the engine's configuration (RETRAIN_EVERY_H, HISTORY_MAX_BYTES): the single process's, or a scale-out worker's.

import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import type { EngineConfig } from "../../contracts/config.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { historyDirOf } from "../history/mod.ts";
import type { NatsModelRegistry } from "../infer/nats_registry.ts";
import { runRetrainChild } from "./retrain_child.ts";
import { fileRetrainJournal } from "./retrain_journal.ts";
import { RetrainLeases } from "./retrain_lease.ts";
import { pendingRetrainRequests, REQUEST_POLL_MS } from "./retrain_request.ts";
import { RetrainScheduler } from "./retrain_scheduler.ts";
import { sharedRetrainRun } from "./shared_retrain.ts";

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
 * The single-process engine's retraining: rounds every `RETRAIN_EVERY_H` when above 0, and runs
 * asked for (`POST /models/{name}/retrain`) whenever the training history is on
 * (`HISTORY_MAX_BYTES` above 0), schedule or not. Undefined when both are off. `models` lists the
 * models served at the moment a round starts.
 */
export function retrainSchedulerFor(
  config: EngineConfig,
  deps: { log: Logger; models: () => string[] },
): RetrainScheduler | undefined {
  if (config.RETRAIN_EVERY_H === 0 && config.HISTORY_MAX_BYTES === 0) return undefined;
  const env = retrainEnvOf(config);
  if (config.RETRAIN_EVERY_H > 0) {
    deps.log.info("scheduled retraining on", {
      every_h: config.RETRAIN_EVERY_H,
      promote: config.RETRAIN_PROMOTE,
    });
  }
  return new RetrainScheduler({
    everyH: config.RETRAIN_EVERY_H,
    models: deps.models,
    // Who asked goes to the child: a promotion's activation record names them, as under scale-out.
    run: (model, signal, asked) =>
      runRetrainChild({
        model,
        env,
        signal,
        ...(asked
          ? {
              asked: {
                by: asked.by,
                reason: `retraining asked for by ${asked.by}${asked.reason ? `: ${asked.reason}` : ""}`,
              },
            }
          : {}),
      }),
    log: deps.log,
    // The schedule's clock and the last runs outlive a restart (retrain_journal.ts).
    journal: fileRetrainJournal(join(config.DATA_DIR, "retraining.json"), deps.log),
  });
}

/**
 * A scale-out worker's retraining (`FRAME_BUS=nats`): rounds every `RETRAIN_EVERY_H` when above
 * 0, and, with the training history on (`HISTORY_MAX_BYTES` above 0), a look-out every second for
 * runs an ingest replica was asked for (`retrain_request.<model>` in the registry's pointer
 * bucket); undefined when both are off. Every worker runs one; a run goes ahead on the worker
 * holding the model's lease in `<NATS_STREAM>_retrain` and publishes into the shared registry
 * (`sharedRetrainRun`). Ingest replicas never retrain.
 */
export function sharedRetrainSchedulerFor(
  config: EngineConfig,
  deps: {
    log: Logger;
    models: () => string[];
    nc: NatsConnection;
    registry: NatsModelRegistry;
    worker: string;
  },
): RetrainScheduler | undefined {
  if (config.RETRAIN_EVERY_H === 0 && config.HISTORY_MAX_BYTES === 0) return undefined;
  if (config.RETRAIN_EVERY_H > 0) {
    deps.log.info("scheduled retraining on, one worker at a time per model (a KV lease)", {
      every_h: config.RETRAIN_EVERY_H,
      promote: config.RETRAIN_PROMOTE,
      worker: deps.worker,
    });
  }
  let leases: Promise<RetrainLeases> | undefined;
  return new RetrainScheduler({
    everyH: config.RETRAIN_EVERY_H,
    models: deps.models,
    run: sharedRetrainRun({
      config,
      env: retrainEnvOf(config),
      registry: deps.registry,
      worker: deps.worker,
      log: deps.log,
      leases() {
        leases ??= RetrainLeases.open(deps.nc, config.NATS_STREAM).catch((error) => {
          // Opened again by the next run.
          leases = undefined;
          throw error;
        });
        return leases;
      },
    }),
    ...(config.HISTORY_MAX_BYTES > 0
      ? {
          requests: {
            pending: (models: string[]) => pendingRetrainRequests(deps.registry.kv, models),
            everyMs: REQUEST_POLL_MS,
          },
        }
      : {}),
    log: deps.log,
  });
}
