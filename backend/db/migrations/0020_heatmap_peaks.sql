-- The Overview heatmap (incidents.heatmap) places each sensor at its peak, not at the time it was
-- first flagged: it reads the peaks in a period by this index (and the incidents still open at
-- the period's start by incident_open_idx and 0011's incident_resolved_idx).
CREATE INDEX incident_sensor_peak_idx ON incident_sensor (peak_at);
