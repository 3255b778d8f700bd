// Closes the open incidents their engine will never end: another incident of the same stream and model opened since.
import type { Database } from "../db/database.ts";
import { dbErrorTranslator } from "../db/db_errors.ts";

/**
 * How long after its successor was stored an open incident is closed (15 minutes): longer than
 * the engine's retries of one alert (rounds at most 5 minutes apart), so the `resolved` of an
 * incident whose delivery failed while the next incident's opening went through still arrives
 * first and nothing is closed in its place.
 */
export const SUPERSEDE_AFTER_MS = 15 * 60_000;

export interface SupersededIncident {
  incident_id: string;
  superseded_by: string;
  stream_id: string;
  resolved_at: Date;
}

/**
 * An engine holds at most one open incident per stream and model, so an open incident with a
 * later one on its stream and model (by start) was lost by its engine: a new `DATA_DIR`, a
 * scale-out worker gone without handing its state over. Each such incident whose successor was
 * stored before `cutoff` is resolved at its last alert, marked `superseded_by` its next incident,
 * and gets a `resolved` event (id derived from the incident, so a repeat adds nothing), which
 * the notifier plans like the engine's own: whoever was paged hears that it ended, and its
 * reminders stop. One statement; run it as often as wanted, from any backend instance.
 *
 * @example await closeSupersededIncidents(db, new Date(Date.now() - SUPERSEDE_AFTER_MS));
 */
export async function closeSupersededIncidents(
  db: Pick<Database, "sql" | "recover">,
  cutoff: Date,
): Promise<SupersededIncident[]> {
  const sql = db.sql;
  const rows = await sql<SupersededIncident[]>`
    WITH lost AS (
      SELECT o.incident_id, n.incident_id AS successor
      FROM incident o
      JOIN LATERAL (
        SELECT n.incident_id, n.stored_at FROM incident n
        WHERE n.stream_id = o.stream_id AND n.started_at > o.started_at
          AND n.model_name IS NOT DISTINCT FROM o.model_name
        ORDER BY n.started_at, n.incident_id LIMIT 1
      ) n ON n.stored_at < ${cutoff}
      WHERE o.resolved_at IS NULL
    ), closed AS (
      UPDATE incident i SET resolved_at = i.last_alert_at, superseded_by = lost.successor
      FROM lost WHERE i.incident_id = lost.incident_id AND i.resolved_at IS NULL
      RETURNING i.incident_id, i.superseded_by, i.stream_id, i.resolved_at, i.flagged_sensors,
        i.max_severity
    ), events AS (
      INSERT INTO incident_event (alert_id, incident_id, event, event_at, num_sensors,
        max_severity)
      SELECT md5(closed.incident_id::text || ':superseded')::uuid, closed.incident_id,
        'resolved', closed.resolved_at, closed.flagged_sensors, closed.max_severity
      FROM closed
      ON CONFLICT (alert_id) DO NOTHING
    )
    SELECT incident_id, superseded_by, stream_id, resolved_at FROM closed
    ORDER BY incident_id`.catch(dbErrorTranslator(db));
  return [...rows];
}
