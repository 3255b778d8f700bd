-- Notifications: the outbox of messages to people's tools (one row per incident event and route,
-- kept after delivery as the record of what was sent), and a mark on each incident event saying
-- the notifier has planned it, so every stored event is planned exactly once, even across a crash.

-- NULL = not planned yet. Events stored before notifications existed count as planned, so an
-- upgrade does not send the whole history.
ALTER TABLE incident_event ADD COLUMN notify_planned_at timestamptz;
UPDATE incident_event SET notify_planned_at = now();
CREATE INDEX incident_event_unplanned_idx ON incident_event (event_at, alert_id)
  WHERE notify_planned_at IS NULL;

CREATE TABLE notification_outbox (
  -- The Standard Webhooks `webhook-id`: derived from (event_key, route), so every retry and a
  -- redelivery after a crash carry the same id and a receiver can drop repeats.
  message_id text PRIMARY KEY,
  route text NOT NULL,
  -- The incident event's alert_id, or `<incident_id>/still_open/<n>` for the n-th reminder.
  event_key text NOT NULL,
  incident_id uuid NOT NULL,
  event text NOT NULL CHECK (event IN ('opened', 'updated', 'resolved', 'still_open')),
  event_at timestamptz NOT NULL,
  severity double precision,
  -- The exact body sent, built once when planned, so retries send the same bytes.
  body text NOT NULL,
  state text NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'delivered', 'dead', 'silenced')),
  attempts integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  next_attempt_at timestamptz NOT NULL,
  -- A claimed delivery is leased until then; a process that dies mid-delivery leaves it to expire.
  locked_until timestamptz,
  last_attempt_at timestamptz,
  last_status integer,
  last_error text,
  done_at timestamptz,
  UNIQUE (event_key, route)
);

CREATE INDEX notification_outbox_due_idx ON notification_outbox (route, next_attempt_at)
  WHERE state = 'pending';
CREATE INDEX notification_outbox_incident_idx ON notification_outbox (incident_id, route, event_at);
CREATE INDEX notification_outbox_created_idx ON notification_outbox (created_at);
CREATE INDEX notification_outbox_dead_idx ON notification_outbox (done_at DESC)
  WHERE state = 'dead';
