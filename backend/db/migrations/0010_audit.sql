-- The audit trail: every operator action (acknowledgement, verdict, silence created or expired,
-- model activation, sign-in) with the identity that took it. Append-only: the product never
-- changes or deletes a row, and the database refuses it too.

CREATE TABLE audit_event (
  audit_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL,
  -- e.g. incident.acknowledge, incident.verdict, silence.create, silence.expire, model.activate,
  -- session.signin
  action text NOT NULL,
  -- What was acted on: incident:<uuid>, silence:<uuid>, model:<name>, session:<subject>.
  target text NOT NULL,
  actor_subject text NOT NULL,
  actor_name text NOT NULL,
  -- How the actor signed in: none (unverified, loopback only), token or oidc.
  actor_method text NOT NULL CHECK (actor_method IN ('none', 'token', 'oidc')),
  actor_role text NOT NULL CHECK (actor_role IN ('viewer', 'operator', 'admin')),
  detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_event_at_idx ON audit_event (at DESC, audit_id DESC);
CREATE INDEX audit_event_actor_idx ON audit_event (actor_subject, at DESC);

CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_event is append-only';
END;
$$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
