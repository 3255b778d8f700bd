-- Retention prunes ended feed conditions with their messages (backend/retention): the last run's
-- count of them, beside its other counts. Rows written before count none.
ALTER TABLE retention_status ADD COLUMN conditions integer NOT NULL DEFAULT 0;
