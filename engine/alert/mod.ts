// Alerts: built from scored windows, kept durably, delivered with retries.

export {
  cleanNumber,
  observedWindow,
  rankFlagged,
  type ScoredRow,
  sensorEvidence,
  severityScale,
} from "../../scoring/flagged_sensors.ts";
export {
  deterministicUuid,
  type IncidentEvent,
  IncidentTracker,
  type IncidentTrackerOptions,
  type ObservedWindow,
  type SensorEvidence,
  type StreamSnapshot,
} from "../../scoring/incident_tracker.ts";
export {
  AlertDispatcher,
  type AlertDispatcherOptions,
  type DispatchCounts,
} from "./alert_dispatcher.ts";
export {
  AlertPipeline,
  type AlertPipelineOptions,
  type WindowAnomaly,
} from "./alert_pipeline.ts";
export {
  type AlertRecord,
  type AlertSender,
  type AlertSenderOptions,
  createAlertSender,
  type DeliveryOutcome,
  type DeliveryResult,
} from "./alert_sender.ts";
export {
  type AlertContext,
  buildFrameAlert,
  buildIncidentAlert,
  type FrameAlertInput,
} from "./build_alert.ts";
export {
  FileIncidentStateStore,
  type IncidentStateChange,
  type IncidentStateStore,
  type StoredIncidentState,
} from "./incident_state_store.ts";
export { Outbox, type OutboxOptions } from "./outbox.ts";
export { resolveUnservedIncidents, type UnservedIncidentsOptions } from "./resolve_unserved.ts";
export {
  backoffDelay,
  isRetryableStatus,
  RETRYABLE_STATUSES,
  retryAfterMs,
} from "./retry_policy.ts";
