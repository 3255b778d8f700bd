-- An incident the engine will never end: it lost the incident's state (a new DATA_DIR, a
-- scale-out worker gone without handing it over), so no `resolved` comes, and it opened another
-- incident on the same stream and model since. The backend closes it at its last alert
-- (incidents/superseded_incidents.ts) and says by which incident; a `resolved` from the engine
-- arriving after all clears the mark (alert_repository.ts).
ALTER TABLE incident ADD COLUMN superseded_by uuid REFERENCES incident (incident_id) ON DELETE SET NULL;
-- Deleting an incident (retention) finds those it superseded by this, not by a scan.
CREATE INDEX incident_superseded_idx ON incident (superseded_by) WHERE superseded_by IS NOT NULL;
