-- The audit trail filtered by actor (`GET /api/v1/audit?actor=`) matches the subject or the name
-- an event shows (`token:olga` or `olga`; under AUTH_MODE=none everyone's subject is `anonymous`,
-- so only the typed name tells people apart): the name needs an index of its own beside 0010's
-- audit_event_actor_idx on the subject, newest first.
CREATE INDEX audit_event_actor_name_idx ON audit_event (actor_name, at DESC, audit_id DESC);
