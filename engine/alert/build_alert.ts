// Turns a flagged window (ALERT_MODE=frame) or an incident event into the SPEC §4.2 alert body.
import {
  type Alert,
  type AnomalousFeature,
  type FaultKind,
  type History,
  type RelatedSensor,
  STATISTIC_PATTERN,
} from "../../contracts/alert.ts";
import {
  deterministicUuid,
  type IncidentEvent,
  type SensorEvidence,
} from "../../scoring/incident_tracker.ts";
import { windowAlertId } from "../bus/window_alert_id.ts";
import { type AlertFit, fitAlert } from "./fit_alert.ts";

/** What every alert of one model shares: names, statistic names, typical ranges, threshold. */
export interface AlertContext {
  featureNames: readonly string[];
  /** The model's statistic names (`statistics`), indexed by `SensorEvidence.statistic`. */
  statistics?: readonly string[];
  /** Per-feature typical range in the sensor's units (model metadata `typical`). */
  typical?: { readonly low: readonly number[]; readonly high: readonly number[] };
  threshold: number;
  /** The model that scored the window, and its version (every alert names both). */
  modelName: string;
  modelVersion: string;
  /**
   * Most bytes an alert's JSON body may take (`ALERT_MAX_BYTES`): past it, the least severe
   * sensors' evidence and then the sensors themselves give way (`fitAlert`). Unset: no limit.
   */
  maxBytes?: number;
}

/**
 * An incident alert's context (engine/evidence): per listed sensor its history before onset and
 * related sensors, and the incident's fault kind.
 */
export interface IncidentContext {
  kind?: FaultKind;
  sensors: ReadonlyMap<number, { history?: History; related?: RelatedSensor[] }>;
}

/**
 * Hears what `ALERT_MAX_BYTES` left out of an alert that did not fit (the alert as sent), so the
 * caller can say so: the body itself only still counts the sensors no longer listed.
 */
export type OnAlertFit = (fit: AlertFit, alert: Alert) => void;

/** Fits `alert` to the context's limit, telling `onFit` what it cut. */
function fit(ctx: AlertContext, alert: Alert, onFit: OnAlertFit | undefined): Alert {
  if (ctx.maxBytes === undefined) return alert;
  const cut = fitAlert(alert, ctx.maxBytes);
  if (cut) onFit?.(cut, alert);
  return alert;
}

/** One scored window's flagged sensors, for `ALERT_MODE=frame`. */
export interface FrameAlertInput {
  streamId: string;
  /** Epoch ms of the newest frame of the window. */
  frameTimestamp: number;
  /** Every flagged sensor counted; `sensors` lists the most severe (already capped). */
  count: number;
  sensors: readonly SensorEvidence[];
  /** Reception of the newest frame → inference complete. */
  latencyMs: number;
  /** Epoch ms now. */
  now: number;
}

// Readings arrive as float32: seven significant digits print them faithfully (10.1, not
// 10.100000381469727). Non-finite values cannot reach here (ingest rejects them).
const reading = (x: number) => Number(x.toPrecision(7));

function feature(ctx: AlertContext, e: SensorEvidence): AnomalousFeature {
  const i = e.feature_idx;
  const name = ctx.statistics?.[e.statistic];
  const out: AnomalousFeature = {
    feature_idx: i,
    score: e.score,
    feature: ctx.featureNames[i],
    severity: e.severity,
    value: reading(e.window[e.window.length - 1]),
    window: e.window.map(reading),
    statistic: name && STATISTIC_PATTERN.test(name) ? name : "score",
  };
  const low = ctx.typical?.low[i];
  const high = ctx.typical?.high[i];
  if (Number.isFinite(low) && Number.isFinite(high)) {
    // A sensor with a running level: its range is of the deviation from that level.
    const at = e.level ?? 0;
    out.typical =
      at === 0
        ? { low: low!, high: high! }
        : { low: reading(at + low!), high: reading(at + high!) };
  }
  return out;
}

function common(ctx: AlertContext, sensors: readonly SensorEvidence[], count: number) {
  const features = sensors.map((e) => feature(ctx, e));
  let maxScore = 0;
  let maxSeverity = 0;
  for (const f of features) {
    maxScore = Math.max(maxScore, f.score);
    maxSeverity = Math.max(maxSeverity, f.severity ?? 0);
  }
  return {
    num_anomalous_features: Math.max(count, features.length),
    anomalous_features: features,
    max_score: maxScore,
    threshold: ctx.threshold,
    model_name: ctx.modelName,
    model_version: ctx.modelVersion,
    max_severity: maxSeverity,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
const latency = (ms: number) => Math.max(0, Math.round(ms * 1000) / 1000);

/**
 * The alert of one anomalous window (`ALERT_MODE=frame`, and the scale-out worker). Its
 * `alert_id` is `windowAlertId` of the stream, the window's newest frame, the model and its version:
 * a window scored twice, by this engine or a scale-out worker, gives one id.
 *
 * `onFit` hears what `ALERT_MAX_BYTES` cut, if anything.
 *
 * @example buildFrameAlert(ctx, { streamId, frameTimestamp, count, sensors, latencyMs, now });
 */
export function buildFrameAlert(
  ctx: AlertContext,
  input: FrameAlertInput,
  onFit?: OnAlertFit,
): Alert {
  const { streamId, frameTimestamp } = input;
  const alert: Alert = {
    timestamp: iso(input.now),
    anomaly_detected: true,
    ...common(ctx, input.sensors, input.count),
    alert_id: windowAlertId(streamId, frameTimestamp, ctx.modelName, ctx.modelVersion),
    stream_id: streamId,
    frame_timestamp: iso(frameTimestamp),
    latency_ms: latency(input.latencyMs),
  };
  return fit(ctx, alert, onFit);
}

/**
 * The alert of an incident event (`ALERT_MODE=incident`). It lists the incident's sensors with
 * their peak evidence and counts every sensor flagged in it; a `resolved` alert says
 * `anomaly_detected: false`. Its `alert_id` is derived from the incident, the event and the
 * window's timestamp. With a `context`, each listed sensor gets its `history` and `related`, and
 * the alert the incident's `kind` (else the event's last one). `onFit` hears what
 * `ALERT_MAX_BYTES` cut, if anything.
 */
export function buildIncidentAlert(
  ctx: AlertContext,
  event: IncidentEvent,
  at: { latencyMs: number; now: number },
  context?: IncidentContext,
  onFit?: OnAlertFit,
): Alert {
  const alert: Alert = {
    timestamp: iso(at.now),
    anomaly_detected: event.event !== "resolved",
    ...common(ctx, event.sensors, event.sensorCount),
    alert_id: deterministicUuid("alert", event.incidentId, event.event, event.timestamp),
    stream_id: event.streamId,
    frame_timestamp: iso(event.timestamp),
    latency_ms: latency(at.latencyMs),
    incident_id: event.incidentId,
    event: event.event,
    incident_started_at: iso(event.startedAt),
  };
  const kind = context?.kind ?? event.kind;
  if (kind) alert.kind = kind;
  if (context?.sensors.size) {
    for (const f of alert.anomalous_features) {
      const extra = context.sensors.get(f.feature_idx);
      if (extra?.history) f.history = extra.history;
      if (extra?.related?.length) f.related = extra.related;
    }
  }
  return fit(ctx, alert, onFit);
}
