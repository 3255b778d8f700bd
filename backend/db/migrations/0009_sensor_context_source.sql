-- A sensor's history and related sensors come from its strongest alert that carries them, which
-- need not be its strongest alert: a `resolved` alert repeats the peak evidence without context.
-- The ranking key of the alert the context came from is kept apart, so any arrival order of the
-- same alerts converges on the same context.
ALTER TABLE incident_sensor
  ADD COLUMN context_severity double precision,
  ADD COLUMN context_score double precision,
  ADD COLUMN context_at timestamptz,
  ADD COLUMN context_alert_id uuid;

UPDATE incident_sensor
SET context_severity = severity, context_score = score, context_at = peak_at,
  context_alert_id = peak_alert_id
WHERE history IS NOT NULL OR related IS NOT NULL;
