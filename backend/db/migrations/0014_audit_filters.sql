-- The audit trail filtered by target (one incident's, silence's or model's actions) or by action,
-- newest first: walked from the newest event, a rare target or action read the whole append-only
-- table before these.
CREATE INDEX audit_event_target_idx ON audit_event (target, at DESC, audit_id DESC);
CREATE INDEX audit_event_action_idx ON audit_event (action, at DESC, audit_id DESC);
