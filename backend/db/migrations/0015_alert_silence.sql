-- Alerts without an incident (ALERT_MODE=frame, the original design's engine) are marked with the
-- silence they fell under, as incidents are (0006): the one holding at the alert's frame time that
-- matches its stream and covers all its sensors. An incident's alert records its incident's
-- silence as of that alert. Null: none; set once, at insert (a silence created later does not
-- reach back).
ALTER TABLE alert ADD COLUMN silence_id uuid REFERENCES silence (silence_id);
