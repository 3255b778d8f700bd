-- Operator records are superseded or expired, never changed or erased, and the database says so
-- too (the code has no such statement; this is the guard for whatever does): a verdict and an
-- acknowledgement are only ever added, a silence is only ever expired (once: who, when, why), and
-- neither they nor the audit trail (whose rows 0010 guards) can be emptied by TRUNCATE.

CREATE FUNCTION operator_record_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% keeps operator records: they are superseded, never changed or erased',
    TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER incident_verdict_kept BEFORE UPDATE OR DELETE ON incident_verdict
  FOR EACH ROW EXECUTE FUNCTION operator_record_kept();
CREATE TRIGGER incident_ack_kept BEFORE UPDATE OR DELETE ON incident_ack
  FOR EACH ROW EXECUTE FUNCTION operator_record_kept();
CREATE TRIGGER incident_verdict_not_truncated BEFORE TRUNCATE ON incident_verdict
  FOR EACH STATEMENT EXECUTE FUNCTION operator_record_kept();
CREATE TRIGGER incident_ack_not_truncated BEFORE TRUNCATE ON incident_ack
  FOR EACH STATEMENT EXECUTE FUNCTION operator_record_kept();
CREATE TRIGGER silence_not_truncated BEFORE TRUNCATE ON silence
  FOR EACH STATEMENT EXECUTE FUNCTION operator_record_kept();
CREATE TRIGGER audit_event_not_truncated BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION operator_record_kept();

-- A silence: never deleted; changed only by its one expiry, which sets expired_* and nothing else.
CREATE FUNCTION silence_expired_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR OLD.expired_at IS NOT NULL
    OR (NEW.silence_id, NEW.stream_glob, NEW.sensor_globs, NEW.starts_at, NEW.ends_at,
        NEW.recurrence, NEW.reason, NEW.created_by, NEW.created_at)
      IS DISTINCT FROM (OLD.silence_id, OLD.stream_glob, OLD.sensor_globs, OLD.starts_at,
        OLD.ends_at, OLD.recurrence, OLD.reason, OLD.created_by, OLD.created_at)
  THEN
    RAISE EXCEPTION 'silence keeps operator records: a silence is only ever expired, once';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER silence_expired_only BEFORE UPDATE OR DELETE ON silence
  FOR EACH ROW EXECUTE FUNCTION silence_expired_only();
