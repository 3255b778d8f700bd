-- A reminder (`still_open`) that was still waiting when a newer one was planned, or when its
-- incident resolved, is `superseded`: kept as the record of what was not sent, and why, but
-- never sent, so a receiver back after an outage hears one reminder, not one per missed period.
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_state_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_state_check
  CHECK (state IN ('pending', 'delivered', 'dead', 'silenced', 'superseded'));
