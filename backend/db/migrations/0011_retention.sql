-- Retention (backend/retention): what the pruner walks oldest first, the backend's own clock on
-- incidents, and the record of its last run for the Health page.

-- Alerts go by the backend's clock (received_at), not the engine's (ts): a replay of old frames or
-- an engine with a wrong clock must not lose its alerts on arrival.
CREATE INDEX alert_received_idx ON alert (received_at);

-- An incident goes once it is resolved by its own clock (frame time) and was first stored by ours
-- longer ago than the horizon. Incidents stored before count from their start.
ALTER TABLE incident ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();
UPDATE incident SET stored_at = LEAST(started_at, stored_at);
CREATE INDEX incident_resolved_idx ON incident (resolved_at) WHERE resolved_at IS NOT NULL;

-- One row: the latest run by any backend instance, with the horizons it ran under (0 = forever).
CREATE TABLE retention_status (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  alerts_days double precision NOT NULL,
  incidents_days double precision NOT NULL,
  every_s double precision NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  alerts integer NOT NULL,
  alert_features integer NOT NULL,
  incidents integer NOT NULL,
  notifications integer NOT NULL,
  oldest_alert_at timestamptz,
  oldest_incident_at timestamptz,
  -- Set when the run stopped on an error; the counts are what it pruned before.
  error text
);
