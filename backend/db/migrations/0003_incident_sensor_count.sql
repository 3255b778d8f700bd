-- The engine lists at most MAX_ALERT_FEATURES sensors per alert (the most severe) but counts them
-- all in num_anomalous_features: an incident's sensor count is the largest count any of its
-- alerts gave, not the rows it has evidence for.
ALTER TABLE incident ADD COLUMN flagged_sensors integer NOT NULL DEFAULT 0;

UPDATE incident i SET flagged_sensors = (
  SELECT coalesce(max(a.num_anomalous_features), 0) FROM alert a WHERE a.incident_id = i.incident_id
);
