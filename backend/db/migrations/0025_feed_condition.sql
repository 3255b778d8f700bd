-- Conditions of the data feed that the backend watches on the engine's `GET /stats`, for the
-- notification routes: a stream gone silent, a stopped machine whose other sensors read as running
-- (its running condition's sensor may have failed), the engine out of reach. One row per episode,
-- opened when first seen and ended when no longer seen; kept as the record, never erased.
CREATE TABLE feed_condition (
  condition_id uuid PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('stream_silent', 'running_sensor_doubt', 'engine_unreachable')),
  -- What it is about: the stream id, or the engine's URL.
  subject text NOT NULL,
  stream_id text,
  -- The running condition's sensor (running_sensor_doubt).
  sensor text,
  -- Since when it holds, as the engine says (a stream's last accepted frame, the doubt's start) or,
  -- for the engine out of reach, the first failed read.
  since timestamptz NOT NULL,
  -- What the engine said of it (a stream's last frame time, the sensor's share of others in range).
  detail jsonb NOT NULL DEFAULT '{}',
  opened_at timestamptz NOT NULL,
  -- The last read that showed it: it ends once reads have not shown it for a grace period
  -- (FEED_GRACE_MS), so an engine restarting or a replica not yet reading its board (lists
  -- empty for a moment) ends nothing.
  seen_at timestamptz NOT NULL,
  ended_at timestamptz
);
-- One open episode per kind and subject, whichever backend saw it first.
CREATE UNIQUE INDEX feed_condition_open_idx ON feed_condition (kind, subject) WHERE ended_at IS NULL;
CREATE INDEX feed_condition_ended_idx ON feed_condition (ended_at) WHERE ended_at IS NOT NULL;

-- When a backend last reached each engine: one that cannot reach it opens no `engine_unreachable`
-- episode while another reached it since its own failures began (backends that disagree do not
-- page open, resolved, open...).
CREATE TABLE feed_engine (
  engine_url text PRIMARY KEY,
  reached_at timestamptz NOT NULL
);

-- A message is about an incident or about a feed condition.
ALTER TABLE notification_outbox ALTER COLUMN incident_id DROP NOT NULL;
ALTER TABLE notification_outbox ADD COLUMN condition_id uuid;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_subject_check
  CHECK ((incident_id IS NULL) <> (condition_id IS NULL));
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_event_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_event_check
  CHECK (event IN ('opened', 'updated', 'resolved', 'still_open', 'condition_opened',
    'condition_resolved'));
CREATE INDEX notification_outbox_condition_idx ON notification_outbox (condition_id, route)
  WHERE condition_id IS NOT NULL;
