// The shapes alerts take between the HTTP layer and the repository.
import type { CursorKey } from "./_cursor.ts";

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
  latency_ms: number | null;
  anomalous_features: { feature_idx: number; score: number; feature?: string }[];
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
  latency_ms: number | null;
  received_at: string;
  anomalous_features: { feature_idx: number; score: number; feature?: string }[];
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
