-- The Health page counts a route's messages by when they were done (delivered, dead, silenced,
-- superseded) over the last 24 h, not by when they were planned, and shows each route's latest
-- delivery however old: one index for the window, one for a route's last delivery.
CREATE INDEX notification_outbox_done_idx ON notification_outbox (done_at)
  WHERE state <> 'pending';
CREATE INDEX notification_outbox_delivered_idx ON notification_outbox (route, done_at)
  WHERE state = 'delivered';
