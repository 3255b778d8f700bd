// The alert path as the engine's configuration describes it: one place for the single-process
// engine and the scale-out worker.
import type { Tracer } from "@opentelemetry/api";
import type { EngineConfig } from "../../contracts/config.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import { severityScale } from "../../scoring/flagged_sensors.ts";
import { incidentTrackerFor } from "../../scoring/incident_tracker.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { EngineMetrics } from "../../telemetry/metrics.ts";
import type { IncidentEvidence } from "../evidence/incident_evidence.ts";
import { AlertDispatcher } from "./alert_dispatcher.ts";
import { AlertPipeline, type AlertPipelineOptions } from "./alert_pipeline.ts";
import { createAlertSender } from "./alert_sender.ts";
import type { IncidentStateStore } from "./incident_state_store.ts";
import type { Outbox } from "./outbox.ts";

/**
 * Delivery of the alerts in `outbox` to the configured main server: retries within a round up to
 * `RETRY_MAX_MS` apart, then rounds that back off to at most 5 minutes.
 */
export function alertDispatcherFor(
  config: EngineConfig,
  outbox: Outbox,
  deps: { log: Logger; metrics: EngineMetrics; fetch?: typeof fetch; tracer?: Tracer },
): AlertDispatcher {
  const roundBaseMs = Math.max(config.RETRY_BASE_MS, config.RETRY_MAX_MS);
  return new AlertDispatcher({
    outbox,
    send: createAlertSender({
      url: `${config.NESTJS_URL}${config.NESTJS_ANOMALY_ENDPOINT}`,
      maxRetries: config.MAX_RETRIES,
      retryBaseMs: config.RETRY_BASE_MS,
      retryMaxMs: roundBaseMs,
      timeoutMs: config.ALERT_TIMEOUT_MS,
      signingSecret: config.ALERT_SIGNING_SECRET,
      fetch: deps.fetch,
      tracer: deps.tracer,
      metrics: deps.metrics,
    }),
    concurrency: config.ALERT_CONCURRENCY,
    maxAlerts: config.OUTBOX_MAX_ALERTS,
    maxBytes: config.OUTBOX_MAX_BYTES,
    roundBaseMs,
    roundMaxMs: Math.max(roundBaseMs, Math.min(300_000, 30 * roundBaseMs)),
    log: deps.log,
    metrics: deps.metrics,
  });
}

/**
 * The alert pipeline of `ALERT_MODE` for a model: in incident mode with the configured tracker
 * and `store` (where a stream's open incidents are kept), in frame mode one alert per window.
 */
export function alertPipelineFor(
  config: EngineConfig,
  meta: ModelMetadata,
  deps: {
    dispatcher: AlertDispatcher;
    log: Logger;
    now: () => number;
    store: () => IncidentStateStore;
    /** Incident context (engine/evidence `evidenceFor`): history, related sensors, kind. */
    evidence?: IncidentEvidence;
    /** Windows may be handed over again (a scale-out partition's re-read): `AlertPipelineOptions.replays`. */
    replays?: boolean;
  },
): AlertPipeline {
  const incidents = config.ALERT_MODE === "incident";
  return new AlertPipeline({
    mode: config.ALERT_MODE,
    ...alertModelFor(config, meta),
    tracker: incidents ? incidentTrackerFor(config, meta) : undefined,
    dispatcher: deps.dispatcher,
    log: deps.log,
    now: deps.now,
    store: incidents ? deps.store() : undefined,
    staleMs: config.INCIDENT_STALE_MS,
    evidence: deps.evidence,
    replays: deps.replays,
  });
}

/** What an alert pipeline takes from its model: alert context, window size, severity scale. */
export function alertModelFor(
  config: Pick<EngineConfig, "ANOMALY_THRESHOLD" | "ALERT_MAX_BYTES">,
  meta: ModelMetadata,
): Pick<AlertPipelineOptions, "context" | "windowSize" | "severityScale"> {
  return {
    context: {
      featureNames: meta.feature_names,
      statistics: meta.statistics,
      typical: meta.typical,
      threshold: config.ANOMALY_THRESHOLD,
      modelName: meta.name,
      modelVersion: meta.version,
      maxBytes: config.ALERT_MAX_BYTES,
    },
    windowSize: meta.window_size,
    severityScale: severityScale(meta),
  };
}
