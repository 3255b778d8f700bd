-- Operator records are kept, and the incidents they are about with them (backend/retention).

-- A verdict or an acknowledgement is superseded, never erased: deleting an incident that has one
-- is refused instead of taking the records with it. The pruner skips such incidents; this is the
-- guard for anything that does not.
ALTER TABLE incident_verdict DROP CONSTRAINT incident_verdict_incident_id_fkey;
ALTER TABLE incident_verdict ADD CONSTRAINT incident_verdict_incident_id_fkey
  FOREIGN KEY (incident_id) REFERENCES incident (incident_id) ON DELETE RESTRICT;
ALTER TABLE incident_ack DROP CONSTRAINT incident_ack_incident_id_fkey;
ALTER TABLE incident_ack ADD CONSTRAINT incident_ack_incident_id_fkey
  FOREIGN KEY (incident_id) REFERENCES incident (incident_id) ON DELETE RESTRICT;

-- 0011 counted incidents stored before it as stored when they started, by the engine's clock: a
-- replay of old frames stored last week read as stored years ago, and was pruned at once. Where
-- the incident's alerts are still there, the first one's arrival (our clock) is when it was
-- stored, or later. Only incidents 0011 dated: those stored since carry their own stored_at
-- (their earliest alert left may have arrived later, once earlier ones went by their horizon).
UPDATE incident i SET stored_at = a.received_at
FROM (
  SELECT incident_id, min(received_at) AS received_at FROM alert
  WHERE incident_id IS NOT NULL GROUP BY incident_id
) a
WHERE a.incident_id = i.incident_id AND a.received_at > i.stored_at
  AND i.stored_at <= (SELECT applied_at FROM schema_migrations WHERE version = 11);
