-- The engine serves versioned models and can switch versions at run time, so every alert names
-- the model that scored it, and an incident keeps the model of its latest alert (it may go on
-- across a version switch) and that of its earliest one (the alert that opened it). "Latest" and
-- "earliest" are by (frame time, alert_id), a total order, so any arrival order converges.
ALTER TABLE alert ADD COLUMN model_name text;

ALTER TABLE incident
  ADD COLUMN model_name text,
  ADD COLUMN model_version text,
  ADD COLUMN last_alert_id uuid,
  ADD COLUMN opened_model_name text,
  ADD COLUMN opened_model_version text,
  ADD COLUMN first_alert_at timestamptz,
  ADD COLUMN first_alert_id uuid;

-- Incidents stored before: their alerts' versions (no alert had a model name yet). The frame time
-- is the incident's clock, as in the insert (the alert's own time when it has none).
UPDATE incident i SET model_version = l.model_version, last_alert_id = l.alert_id
FROM (
  SELECT DISTINCT ON (incident_id) incident_id, alert_id, model_version
  FROM alert WHERE incident_id IS NOT NULL
  ORDER BY incident_id, coalesce(frame_timestamp, ts) DESC, alert_id DESC
) l
WHERE l.incident_id = i.incident_id;

UPDATE incident i SET opened_model_version = f.model_version, first_alert_at = f.at,
  first_alert_id = f.alert_id
FROM (
  SELECT DISTINCT ON (incident_id) incident_id, alert_id, model_version,
    coalesce(frame_timestamp, ts) AS at
  FROM alert WHERE incident_id IS NOT NULL
  ORDER BY incident_id, coalesce(frame_timestamp, ts), alert_id
) f
WHERE f.incident_id = i.incident_id;
