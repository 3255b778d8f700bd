-- Similar incidents (incidents/similar_incidents.ts) walk each sensor's incidents newest first,
-- one row at a time from where the last one left off: (started_at, incident_id) is the keyset,
-- and incident_id in the index answers each step from the index alone. It replaces 0002's
-- (feature_idx, started_at DESC), whose every use it serves as well.
CREATE INDEX incident_sensor_recent_idx
  ON incident_sensor (feature_idx, started_at DESC, incident_id DESC);
DROP INDEX incident_sensor_feature_idx;
