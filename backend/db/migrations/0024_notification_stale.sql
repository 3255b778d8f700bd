-- An incident event older than its route's `max_age` when the notifier plans it (a backfill of old
-- data: a site re-sending last week after an outage, history loaded by hand) is written `stale`:
-- done at once and never sent, as `silenced` is, so the decision not to page is recorded.
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_state_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_state_check
  CHECK (state IN ('pending', 'delivered', 'dead', 'silenced', 'superseded', 'stale'));
