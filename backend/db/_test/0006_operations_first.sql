-- What operators decide beyond verdicts: maintenance silences (never erased: expiring one sets
-- expired_at, superseding nothing), and two facts on each incident: the silence it fell under
-- (NULL when none) and its kind, `process` or `sensor` (an instrument failing), from its alerts.

CREATE TABLE silence (
  silence_id uuid PRIMARY KEY,
  -- Matchers: a glob on stream_id, and globs on sensor names (empty array = every sensor).
  stream_glob text NOT NULL,
  sensor_globs text[] NOT NULL DEFAULT '{}',
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  -- Weekly recurrence (NULL when none): {"days": [...], "from": "HH:MM", "to": "HH:MM", "tz": "..."}
  recurrence jsonb,
  reason text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  -- Set once when someone expires it early; never cleared.
  expired_at timestamptz,
  expired_by text,
  CHECK (ends_at > starts_at)
);

CREATE INDEX silence_ends_idx ON silence (ends_at DESC, silence_id);

ALTER TABLE incident
  ADD COLUMN silence_id uuid REFERENCES silence (silence_id),
  ADD COLUMN kind text NOT NULL DEFAULT 'process' CHECK (kind IN ('process', 'sensor'));
