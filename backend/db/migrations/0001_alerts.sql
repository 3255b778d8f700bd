-- Alerts and their anomalous features, one row per listed feature so queries can filter and
-- aggregate by feature with plain B-tree indexes.
CREATE TABLE alert (
  alert_id uuid PRIMARY KEY,
  stream_id text NOT NULL,
  ts timestamptz NOT NULL,
  frame_timestamp timestamptz,
  anomaly_detected boolean NOT NULL,
  num_anomalous_features integer NOT NULL CHECK (num_anomalous_features >= 0),
  max_score double precision NOT NULL,
  threshold double precision,
  model_version text,
  latency_ms double precision,
  received_at timestamptz NOT NULL DEFAULT now()
);

-- Newest first, with alert_id as the tie-breaker of the keyset cursor.
CREATE INDEX alert_ts_idx ON alert (ts DESC, alert_id DESC);
CREATE INDEX alert_stream_ts_idx ON alert (stream_id, ts DESC, alert_id DESC);

-- ts and stream_id are copied from the alert so feature queries and the summary need no join.
CREATE TABLE alert_feature (
  alert_id uuid NOT NULL REFERENCES alert (alert_id) ON DELETE CASCADE,
  feature_idx integer NOT NULL,
  score double precision NOT NULL,
  feature text,
  ts timestamptz NOT NULL,
  stream_id text NOT NULL,
  PRIMARY KEY (alert_id, feature_idx)
);

CREATE INDEX alert_feature_idx_ts_idx ON alert_feature (feature_idx, ts DESC, alert_id DESC);
CREATE INDEX alert_feature_ts_idx ON alert_feature (ts);
