-- Operator verdicts on incidents: each verdict is a row (who, when, what, why), superseded by a
-- later one and never updated or deleted, so the history stays. The current verdict of an
-- incident is its row with the highest verdict_id (insertion order; `given_at` may tie).
CREATE TABLE incident_verdict (
  verdict_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  incident_id uuid NOT NULL REFERENCES incident (incident_id) ON DELETE CASCADE,
  verdict text NOT NULL
    CHECK (verdict IN ('true_positive', 'false_positive', 'maintenance', 'sensor_fault')),
  cause text,
  note text,
  given_by text NOT NULL,
  given_at timestamptz NOT NULL
);

-- The latest verdict per incident (and its history in order) from one index scan.
CREATE INDEX incident_verdict_latest_idx ON incident_verdict (incident_id, verdict_id DESC);
