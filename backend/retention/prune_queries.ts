// The pruner's SQL: short batches, oldest rows first, each a transaction of its own.
import type { Sql } from "postgres";

/** Rows one alert batch deleted. */
export interface AlertBatch {
  alerts: number;
  alert_features: number;
}

/** Rows one incident batch deleted (the incidents' sensors and timeline go too). */
export interface IncidentBatch {
  incidents: number;
  /** Alerts stored after their incident's horizon had passed (a late delivery). */
  alerts: number;
  alert_features: number;
  notifications: number;
}

/**
 * Deletes up to `limit` alerts received before `before`, with their features and evidence.
 * Alerts of open incidents go too: the incident keeps its own summary of them.
 */
export async function deleteAlertBatch(sql: Sql, before: Date, limit: number): Promise<AlertBatch> {
  // SKIP LOCKED: two backends pruning at once take different rows instead of waiting on each
  // other. The features are deleted here rather than by the cascade, so they can be counted.
  const [row] = await sql<AlertBatch[]>`
    WITH doomed AS (
      SELECT alert_id FROM alert WHERE received_at < ${before}
      ORDER BY received_at LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), features AS (
      DELETE FROM alert_feature WHERE alert_id IN (SELECT alert_id FROM doomed) RETURNING 1
    ), alerts AS (
      DELETE FROM alert WHERE alert_id IN (SELECT alert_id FROM doomed) RETURNING 1
    )
    SELECT (SELECT count(*) FROM alerts)::int AS alerts,
      (SELECT count(*) FROM features)::int AS alert_features`;
  return row;
}

/**
 * Deletes up to `limit` incidents resolved (by their clock) and first stored (by ours) before
 * `before`, with everything that hangs off them and their notifications (delivered, silenced,
 * stale, superseded, and dead letters: kept as long as their incident, not for ever). Left for
 * a later run: an incident with a notification still pending or an event the notifier has not
 * planned yet. Never touched: an incident with a verdict or an acknowledgement (operator records
 * are kept, and what they are about with them), open incidents, silences, the audit trail.
 */
export async function deleteIncidentBatch(
  sql: Sql,
  before: Date,
  limit: number,
): Promise<IncidentBatch> {
  const prunable = (tx: Sql) => tx`
    i.resolved_at < ${before} AND i.stored_at < ${before}
    AND NOT EXISTS (SELECT 1 FROM incident_verdict v WHERE v.incident_id = i.incident_id)
    AND NOT EXISTS (SELECT 1 FROM incident_ack k WHERE k.incident_id = i.incident_id)
    AND NOT EXISTS (SELECT 1 FROM notification_outbox o
      WHERE o.incident_id = i.incident_id AND o.state = 'pending')
    AND NOT EXISTS (SELECT 1 FROM incident_event e
      WHERE e.incident_id = i.incident_id AND e.notify_planned_at IS NULL)`;
  // Two statements: the first locks the candidates, the second judges them again under a
  // snapshot taken after the locks. One statement would judge by a snapshot taken before them,
  // so a verdict committed in between would be missed (and the foreign key refuse the delete).
  // Once a row is locked here, a verdict or acknowledgement of it waits, then finds it gone.
  const batch = async function incidentBatch(tx: Sql): Promise<IncidentBatch> {
    const locked = await tx<{ incident_id: string }[]>`
      SELECT i.incident_id FROM incident i WHERE ${prunable(tx)}
      ORDER BY i.resolved_at LIMIT ${limit}
      FOR UPDATE SKIP LOCKED`;
    if (locked.length === 0)
      return { incidents: 0, alerts: 0, alert_features: 0, notifications: 0 };
    const [row] = await tx<IncidentBatch[]>`
      WITH doomed AS (
        SELECT i.incident_id FROM incident i
        WHERE i.incident_id = ANY(${locked.map((r) => r.incident_id)}::uuid[]) AND ${prunable(tx)}
      ), late AS (
        SELECT alert_id FROM alert WHERE incident_id IN (SELECT incident_id FROM doomed)
      ), late_features AS (
        DELETE FROM alert_feature WHERE alert_id IN (SELECT alert_id FROM late) RETURNING 1
      ), late_alerts AS (
        DELETE FROM alert WHERE alert_id IN (SELECT alert_id FROM late) RETURNING 1
      ), notifications AS (
        DELETE FROM notification_outbox
        WHERE incident_id IN (SELECT incident_id FROM doomed)
          AND state IN ('delivered', 'silenced', 'stale', 'superseded', 'dead')
        RETURNING 1
      ), incidents AS (
        DELETE FROM incident WHERE incident_id IN (SELECT incident_id FROM doomed) RETURNING 1
      )
      SELECT (SELECT count(*) FROM incidents)::int AS incidents,
        (SELECT count(*) FROM late_alerts)::int AS alerts,
        (SELECT count(*) FROM late_features)::int AS alert_features,
        (SELECT count(*) FROM notifications)::int AS notifications`;
    return row;
  };
  // Already inside a caller's transaction (a TransactionSql has no `begin`): run in that one.
  return typeof sql.begin === "function"
    ? await sql.begin((tx) => batch(tx as unknown as Sql))
    : await batch(sql);
}

/** When the oldest alert kept was received, and the oldest incident kept started. */
export async function oldestKept(
  sql: Sql,
): Promise<{ alert_at: Date | null; incident_at: Date | null }> {
  const [row] = await sql<{ alert_at: Date | null; incident_at: Date | null }[]>`
    SELECT (SELECT min(received_at) FROM alert) AS alert_at,
      (SELECT min(started_at) FROM incident) AS incident_at`;
  return row;
}

/**
 * The tables a prune deletes from; `vacuum` makes their freed space reusable. Not among them:
 * `incident_verdict` and `incident_ack`, operator records that are never deleted.
 */
export const PRUNED_TABLES = [
  "alert",
  "alert_feature",
  "incident",
  "incident_sensor",
  "incident_event",
  "notification_outbox",
] as const;

/**
 * Marks the space of deleted rows reusable and refreshes the planner's statistics. PGlite runs no
 * autovacuum, so without this its files would keep every deleted row's space and its planner
 * would never learn how large the tables grew; PostgreSQL's autovacuum does both on its own. One
 * table per statement, so ingest's statements get PGlite's connection in between.
 */
export async function vacuum(sql: Sql): Promise<void> {
  for (const table of PRUNED_TABLES) await sql.unsafe(`VACUUM (ANALYZE) ${table}`);
}

/** Refreshes the planner's statistics on the pruned tables (PGlite: no autoanalyze), one per statement. */
export async function analyze(sql: Sql): Promise<void> {
  for (const table of PRUNED_TABLES) await sql.unsafe(`ANALYZE ${table}`);
}

/** The last run as the Health page shows it: one row, replaced by every run of any backend. */
export interface RetentionStatusRow {
  alerts_days: number;
  incidents_days: number;
  every_s: number;
  started_at: Date;
  finished_at: Date;
  alerts: number;
  alert_features: number;
  incidents: number;
  notifications: number;
  oldest_alert_at: Date | null;
  oldest_incident_at: Date | null;
  error: string | null;
}

export async function recordStatus(sql: Sql, s: RetentionStatusRow): Promise<void> {
  await sql`
    INSERT INTO retention_status (singleton, alerts_days, incidents_days, every_s, started_at,
      finished_at, alerts, alert_features, incidents, notifications, oldest_alert_at,
      oldest_incident_at, error)
    VALUES (true, ${s.alerts_days}, ${s.incidents_days}, ${s.every_s}, ${s.started_at},
      ${s.finished_at}, ${s.alerts}, ${s.alert_features}, ${s.incidents}, ${s.notifications},
      ${s.oldest_alert_at}, ${s.oldest_incident_at}, ${s.error})
    ON CONFLICT (singleton) DO UPDATE SET alerts_days = EXCLUDED.alerts_days,
      incidents_days = EXCLUDED.incidents_days, every_s = EXCLUDED.every_s,
      started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
      alerts = EXCLUDED.alerts, alert_features = EXCLUDED.alert_features,
      incidents = EXCLUDED.incidents, notifications = EXCLUDED.notifications,
      oldest_alert_at = EXCLUDED.oldest_alert_at, oldest_incident_at = EXCLUDED.oldest_incident_at,
      error = EXCLUDED.error`;
}
