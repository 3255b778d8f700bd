-- Incidents: the alerts of one anomaly episode grouped by the engine's incident_id, with each
-- sensor's peak evidence, a timeline of lifecycle events, and the operator's acknowledgement.
-- Every column is derived so that storing the same alerts in any order gives the same rows.

-- The evidence the engine attaches to each flagged sensor (NULL for alerts that carry none).
ALTER TABLE alert_feature
  ADD COLUMN severity double precision,
  ADD COLUMN value double precision,
  ADD COLUMN window_values double precision[],
  ADD COLUMN typical_low double precision,
  ADD COLUMN typical_high double precision,
  ADD COLUMN statistic text;

ALTER TABLE alert
  ADD COLUMN incident_id uuid,
  ADD COLUMN event text CHECK (event IN ('opened', 'updated', 'resolved')),
  ADD COLUMN incident_started_at timestamptz,
  ADD COLUMN max_severity double precision;

CREATE INDEX alert_incident_idx ON alert (incident_id) WHERE incident_id IS NOT NULL;

-- started_at is the same on every event; last_alert_at and resolved_at only grow, so a late
-- `updated` never reopens a resolved incident.
CREATE TABLE incident (
  incident_id uuid PRIMARY KEY,
  stream_id text NOT NULL,
  started_at timestamptz NOT NULL,
  last_alert_at timestamptz NOT NULL,
  resolved_at timestamptz,
  max_severity double precision,
  max_score double precision NOT NULL,
  alerts integer NOT NULL DEFAULT 1
);

-- Newest first with incident_id as the keyset tie-breaker, overall and for open ones.
CREATE INDEX incident_started_idx ON incident (started_at DESC, incident_id DESC);
CREATE INDEX incident_open_idx ON incident (started_at DESC, incident_id DESC)
  WHERE resolved_at IS NULL;
CREATE INDEX incident_stream_idx ON incident (stream_id, started_at DESC, incident_id DESC);

-- One row per sensor ever flagged in the incident, holding the evidence of its strongest alert
-- (by severity, then score, then time, then alert_id: a total order, so any arrival order
-- converges on the same row).
CREATE TABLE incident_sensor (
  incident_id uuid NOT NULL REFERENCES incident (incident_id) ON DELETE CASCADE,
  feature_idx integer NOT NULL,
  feature text,
  severity double precision,
  score double precision NOT NULL,
  value double precision,
  window_values double precision[],
  typical_low double precision,
  typical_high double precision,
  statistic text,
  peak_at timestamptz NOT NULL,
  peak_alert_id uuid NOT NULL,
  started_at timestamptz NOT NULL,
  PRIMARY KEY (incident_id, feature_idx)
);

CREATE INDEX incident_sensor_feature_idx ON incident_sensor (feature_idx, started_at DESC);
CREATE INDEX incident_sensor_started_idx ON incident_sensor (started_at);

-- The lifecycle events as the engine sent them, one per alert.
CREATE TABLE incident_event (
  alert_id uuid PRIMARY KEY,
  incident_id uuid NOT NULL REFERENCES incident (incident_id) ON DELETE CASCADE,
  event text NOT NULL CHECK (event IN ('opened', 'updated', 'resolved')),
  event_at timestamptz NOT NULL,
  num_sensors integer NOT NULL,
  max_severity double precision
);

CREATE INDEX incident_event_incident_idx ON incident_event (incident_id, event_at);

-- At most one acknowledgement per incident: the first one wins and later ones are answered with it.
CREATE TABLE incident_ack (
  incident_id uuid PRIMARY KEY REFERENCES incident (incident_id) ON DELETE CASCADE,
  acked_by text NOT NULL,
  note text NOT NULL DEFAULT '',
  acked_at timestamptz NOT NULL
);
