-- Databases migrated with 0006's first text (before its silences had `expired_reason`, the
-- newest-first index and the check that who and when an expiry are set together) brought level
-- with those migrated with its final text. Changes nothing on the others.

ALTER TABLE silence ADD COLUMN IF NOT EXISTS expired_reason text;

CREATE INDEX IF NOT EXISTS silence_created_idx ON silence (created_at DESC, silence_id DESC);

DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_constraint
    WHERE conrelid = 'silence'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%expired_by IS NULL%'
  ) THEN
    ALTER TABLE silence ADD CONSTRAINT silence_expired_by_check
      CHECK ((expired_at IS NULL) = (expired_by IS NULL));
  END IF;
END
$$;
