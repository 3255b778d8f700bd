// Resolves the open incidents kept for models the engine does not serve: no lane will ever read them.
import { resolvedFromSnapshot } from "../../scoring/incident_tracker.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { AlertDispatcher } from "./alert_dispatcher.ts";
import type { AlertRecord } from "./alert_sender.ts";
import { type AlertContext, buildIncidentAlert } from "./build_alert.ts";
import {
  FileIncidentStateStore,
  incidentStateDir,
  modelsWithIncidentStates,
  type SavedModel,
} from "./incident_state_store.ts";

/**
 * The context of the `resolved` alert of an incident saved under a model whose sensors are not
 * the serving one's: named by the model and version it was saved with (`fallback` for a state
 * that does not say), listing no sensor (their indices mean nothing here).
 */
export function savedModelContext(
  context: AlertContext,
  saved: SavedModel | undefined,
  fallback: { name: string; version: string },
): AlertContext {
  return {
    ...context,
    featureNames: [],
    statistics: undefined,
    typical: undefined,
    modelName: saved?.name ?? fallback.name,
    modelVersion: saved?.version ?? fallback.version,
  };
}

/** The version named by a resolved alert whose state names none (saved before states did). */
const UNKNOWN_VERSION = "unknown";

export interface UnservedIncidentsOptions {
  /** `DATA_DIR`: its `incidents-<model>` folders. */
  dataDir: string;
  /** The models the engine serves: their lanes restore their own folders. */
  served: readonly string[];
  /** What every alert carries beyond the model: `ANOMALY_THRESHOLD`, `ALERT_MAX_BYTES`. */
  context: Pick<AlertContext, "threshold" | "maxBytes">;
  dispatcher: AlertDispatcher;
  log: Logger;
  /** Epoch ms now (the alerts' `timestamp`). */
  now: () => number;
}

/**
 * At start, for each folder of incident states whose model is not served (renamed, dropped from
 * `MODEL_ROUTES`): resolves every open incident it holds, as a restart onto a model with other
 * sensors does (`resolved`, stale at its last window, named by the saved model and version,
 * listing no sensor), puts those alerts in the outbox (fsync'd) with any alerts kept beside the
 * states that may not have reached it, then deletes the states (the folder stays, empty). A
 * crash before the deletion resolves them again at the next start, with the same alert ids.
 * Returns how many incidents were resolved.
 *
 * @example await resolveUnservedIncidents({ dataDir, served: ["boiler"], context, dispatcher, log, now });
 */
export async function resolveUnservedIncidents(options: UnservedIncidentsOptions): Promise<number> {
  const { dataDir, served, dispatcher, log, now } = options;
  const context: AlertContext = {
    ...options.context,
    featureNames: [],
    modelName: "",
    modelVersion: "",
  };
  let resolved = 0;
  for (const model of await modelsWithIncidentStates(dataDir)) {
    if (served.includes(model)) continue;
    const dir = incidentStateDir(dataDir, model);
    const store = new FileIncidentStateStore(dir, {
      onUnusable: (file, problem) =>
        log.warn("an incident state file is unusable; moved aside", { file, problem }),
    });
    const states = await store.load();
    const records: AlertRecord[] = [];
    let incidents = 0;
    for (const [streamId, state] of states) {
      // Kept with the state before the outbox: a crash may have left them out of it.
      if (state.alerts?.length) records.push(...state.alerts);
      const event = state.snapshot && resolvedFromSnapshot(streamId, state.snapshot);
      if (!event) continue;
      const named = savedModelContext(context, state.model, {
        name: model,
        version: UNKNOWN_VERSION,
      });
      const alert = buildIncidentAlert(named, event, { latencyMs: 0, now: now() });
      records.push({ id: alert.alert_id, body: JSON.stringify(alert) });
      incidents++;
    }
    // In the outbox (durable) first, then the states go: never a state deleted whose alert is lost.
    await dispatcher.resubmit(records);
    await store.save(
      [...states.keys()].map((streamId) => ({ streamId, state: undefined })),
      true,
    );
    if (states.size) {
      log.info("incidents resolved: their model is not served", {
        model,
        incidents,
        streams: states.size,
      });
    }
    resolved += incidents;
  }
  return resolved;
}
