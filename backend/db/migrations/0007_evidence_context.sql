-- The context our engine attaches to a flagged sensor's evidence: its recent history (readings
-- with the onset marked, optionally their timestamps and a running level) and the sensors that
-- usually move with it. Both are kept as sent (jsonb, NULL when an alert carried none), on the
-- alert's feature row and, like the rest of the evidence, on the incident's sensor row from its
-- strongest alert.
ALTER TABLE alert_feature
  ADD COLUMN history jsonb,
  ADD COLUMN related jsonb;

ALTER TABLE incident_sensor
  ADD COLUMN history jsonb,
  ADD COLUMN related jsonb;

-- The alert's fault kind as sent (NULL when it carried none). An incident's kind (0006) is that
-- of its latest alert that carries one, by (frame time, alert_id): the same total order as the
-- incident's model, tracked separately because alerts without a kind must not move it, so any
-- arrival order converges. Incidents stored before keep the default.
ALTER TABLE alert ADD COLUMN kind text CHECK (kind IN ('process', 'sensor'));

ALTER TABLE incident
  ADD COLUMN kind_alert_at timestamptz,
  ADD COLUMN kind_alert_id uuid;

-- An incident's sensors strongest first without a sort: the incident page, and finding similar
-- incidents, which compares each candidate's strongest few.
CREATE INDEX incident_sensor_strength_idx
  ON incident_sensor (incident_id, severity DESC NULLS LAST, score DESC, feature_idx);
