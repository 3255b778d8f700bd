// The shapes alerts take between the HTTP layer and the repository.
import type { FaultKind, History, IncidentEvent, RelatedSensor } from "../../contracts/alert.ts";
import type { CursorKey } from "./_cursor.ts";

/** One flagged sensor of an alert, with the evidence our engine attaches (absent from others). */
export interface AlertFeature {
  feature_idx: number;
  score: number;
  feature?: string;
  severity?: number;
  value?: number;
  window?: number[];
  typical?: { low: number; high: number };
  statistic?: string;
  /** The sensor's recent readings with the onset marked, as sent. */
  history?: History;
  /** The sensors it usually moves with, and how far each moved, as sent. */
  related?: RelatedSensor[];
}

/** The incident an alert belongs to (absent in frame mode and from the original design's engine). */
export interface AlertIncident {
  incident_id: string;
  event: IncidentEvent;
  incident_started_at: Date;
}

/** An alert ready to store: the contract's fields with defaults filled in and times parsed. */
export interface NewAlert {
  alert_id: string;
  stream_id: string;
  timestamp: Date;
  frame_timestamp: Date | null;
  anomaly_detected: boolean;
  num_anomalous_features: number;
  max_score: number;
  threshold: number | null;
  model_version: string | null;
  /** The model that scored the window (absent from the original design's and older engines). */
  model_name?: string | null;
  latency_ms: number | null;
  max_severity?: number | null;
  incident?: AlertIncident | null;
  /** The incident's fault kind as this alert judged it (absent from older engines). */
  kind?: FaultKind | null;
  /**
   * The silence it falls under, decided before storing (backend/silences): its incident's for an
   * incident's alert, else one holding at its frame time that covers its stream and sensors.
   */
  silence_id?: string | null;
  anomalous_features: AlertFeature[];
}

/** An alert as the query API returns it (JSON-ready). */
export interface StoredAlert {
  alert_id: string;
  stream_id: string;
  timestamp: string;
  frame_timestamp: string | null;
  anomaly_detected: boolean;
  num_anomalous_features: number;
  max_score: number;
  threshold: number | null;
  model_version: string | null;
  /** The model that scored the window; null when the alert did not name it. */
  model_name: string | null;
  latency_ms: number | null;
  received_at: string;
  /** Present only when the alert carried them. */
  max_severity?: number;
  incident_id?: string;
  event?: IncidentEvent;
  incident_started_at?: string;
  kind?: FaultKind;
  /** The silence it fell under when stored (its incident's for an incident's alert); null: none. */
  silence_id: string | null;
  anomalous_features: AlertFeature[];
}

export interface AlertFilter {
  streamId?: string;
  from?: Date;
  to?: Date;
  featureIdx?: number;
  /** With `featureIdx`: that feature's score; otherwise the alert's `max_score`. */
  minScore?: number;
  limit: number;
  cursor?: CursorKey;
  /** How many top features each listed alert carries. */
  featuresPerAlert: number;
}

export interface AlertPage {
  alerts: StoredAlert[];
  next_cursor: string | null;
}

export interface AlertSummary {
  from: string | null;
  to: string | null;
  total_alerts: number;
  streams: { stream_id: string; alerts: number; max_score: number; last_alert_at: string }[];
  top_features: {
    feature_idx: number;
    feature: string | null;
    alerts: number;
    max_score: number;
  }[];
}
