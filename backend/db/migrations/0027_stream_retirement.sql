-- A stream retired by an operator (a line taken out of service for good): its silence pages
-- nobody and is shown apart. Ended by a person, or by itself when the stream sends again
-- (ended_by NULL); an operator record, so only ever ended, once, never erased (as 0022 guards
-- silences).
CREATE TABLE stream_retirement (
  retirement_id uuid PRIMARY KEY,
  stream_id text NOT NULL,
  retired_at timestamptz NOT NULL,
  retired_by text NOT NULL CHECK (btrim(retired_by) <> ''),
  reason text NOT NULL CHECK (btrim(reason) <> ''),
  -- The stream's last accepted frame as the engine listed it when retired (NULL: not listed).
  last_accepted_at timestamptz,
  -- The last read of the feed watch that listed the stream silent while retired: a complete list
  -- that leaves it out past the grace ends the retirement (it sent).
  listed_at timestamptz,
  ended_at timestamptz,
  ended_by text,
  end_reason text,
  CHECK ((ended_at IS NULL) = (end_reason IS NULL)),
  CHECK (ended_by IS NULL OR ended_at IS NOT NULL)
);

-- One retirement in force per stream.
CREATE UNIQUE INDEX stream_retirement_in_force ON stream_retirement (stream_id)
  WHERE ended_at IS NULL;
CREATE INDEX stream_retirement_retired ON stream_retirement (retired_at DESC, retirement_id DESC);

-- Only ever ended (once: who, when, why) or seen listed while in force; never deleted or emptied.
CREATE FUNCTION stream_retirement_ended_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR OLD.ended_at IS NOT NULL
    OR (NEW.retirement_id, NEW.stream_id, NEW.retired_at, NEW.retired_by, NEW.reason,
        NEW.last_accepted_at)
      IS DISTINCT FROM (OLD.retirement_id, OLD.stream_id, OLD.retired_at, OLD.retired_by,
        OLD.reason, OLD.last_accepted_at)
  THEN
    RAISE EXCEPTION 'stream_retirement keeps operator records: a retirement is only ever ended, once';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER stream_retirement_ended_only BEFORE UPDATE OR DELETE ON stream_retirement
  FOR EACH ROW EXECUTE FUNCTION stream_retirement_ended_only();
CREATE TRIGGER stream_retirement_not_truncated BEFORE TRUNCATE ON stream_retirement
  FOR EACH STATEMENT EXECUTE FUNCTION operator_record_kept();

-- A silent stream's episode is not opened while a retirement covers it (silent since no later than
-- the stream's last frame when retired, or than the retirement). Checked here, at the insert, with
-- the stream's lock that the retirement takes too: a feed watch that judged the stream before an
-- operator retired it opens nothing once the retirement is committed, and a retirement made while
-- the watch inserts waits for it and ends what it opened.
CREATE FUNCTION feed_condition_not_retired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kind = 'stream_silent' THEN
    PERFORM pg_advisory_xact_lock(hashtext('stream_retirement:' || NEW.subject));
    IF EXISTS (SELECT 1 FROM stream_retirement r
        WHERE r.stream_id = NEW.subject AND r.ended_at IS NULL
          AND NEW.since <= COALESCE(r.last_accepted_at, r.retired_at)) THEN
      RETURN NULL;
    END IF;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER feed_condition_not_retired BEFORE INSERT ON feed_condition
  FOR EACH ROW EXECUTE FUNCTION feed_condition_not_retired();
