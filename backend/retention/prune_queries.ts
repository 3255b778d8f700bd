// The pruner's SQL: short batches, oldest rows first, each a transaction of its own.
import type { Sql } from "postgres";
import { CONDITION_END_OWED_MS } from "../notify/outbox_repository.ts";

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
  /** The incidents' sensors and timeline events, deleted by the cascade. */
  incident_sensors: number;
  incident_events: number;
}

/** Rows one feed-condition batch deleted. */
export interface ConditionBatch {
  conditions: number;
  notifications: number;
}

/** A message no one will send or plan again: what goes with its incident or condition. */
const TERMINAL_STATES = ["delivered", "silenced", "stale", "superseded", "dead"];

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
    if (locked.length === 0) {
      return {
        incidents: 0,
        alerts: 0,
        alert_features: 0,
        notifications: 0,
        incident_sensors: 0,
        incident_events: 0,
      };
    }
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
          AND state = ANY(${TERMINAL_STATES}::text[])
        RETURNING 1
      ), incidents AS (
        DELETE FROM incident WHERE incident_id IN (SELECT incident_id FROM doomed) RETURNING 1
      )
      -- The cascade's rows, counted (the statement sees them as they were before it) so the
      -- pruner knows how much of their tables it deleted.
      SELECT (SELECT count(*) FROM incidents)::int AS incidents,
        (SELECT count(*) FROM late_alerts)::int AS alerts,
        (SELECT count(*) FROM late_features)::int AS alert_features,
        (SELECT count(*) FROM notifications)::int AS notifications,
        (SELECT count(*) FROM incident_sensor
          WHERE incident_id IN (SELECT incident_id FROM doomed))::int AS incident_sensors,
        (SELECT count(*) FROM incident_event
          WHERE incident_id IN (SELECT incident_id FROM doomed))::int AS incident_events`;
    return row;
  };
  // Already inside a caller's transaction (a TransactionSql has no `begin`): run in that one.
  return typeof sql.begin === "function"
    ? await sql.begin((tx) => batch(tx as unknown as Sql))
    : await batch(sql);
}

/**
 * Deletes up to `limit` feed conditions (`../notify/feed_conditions.ts`: a stream gone silent, a
 * running condition's sensor in doubt, the engine out of reach) that ended before `before` and
 * longer than {@link CONDITION_END_OWED_MS} before `now`, when the notifier plans no end for them
 * any more, with their messages (delivered, silenced, stale, superseded, and dead letters: kept
 * as long as their condition). Left for a later run: a condition with a message still pending.
 * Never touched: open conditions, `feed_engine` (one row per engine).
 *
 * @example await deleteConditionBatch(sql, new Date(Date.now() - 365 * 86_400_000), 200);
 */
export async function deleteConditionBatch(
  sql: Sql,
  before: Date,
  limit: number,
  now: Date = new Date(),
): Promise<ConditionBatch> {
  const until = new Date(Math.min(before.getTime(), now.getTime() - CONDITION_END_OWED_MS));
  const prunable = (tx: Sql) => tx`
    c.ended_at < ${until}
    AND NOT EXISTS (SELECT 1 FROM notification_outbox o
      WHERE o.condition_id = c.condition_id AND o.state <> ALL(${TERMINAL_STATES}::text[]))`;
  // As for incidents: lock, then judge again under a snapshot taken after the locks. The
  // messages are locked too (no foreign key ties them to their condition): a dead letter re-sent
  // meanwhile either was set pending before, and keeps its condition, or waits and finds it gone.
  const batch = async function conditionBatch(tx: Sql): Promise<ConditionBatch> {
    const locked = await tx<{ condition_id: string }[]>`
      SELECT c.condition_id FROM feed_condition c WHERE ${prunable(tx)}
      ORDER BY c.ended_at LIMIT ${limit}
      FOR UPDATE SKIP LOCKED`;
    if (locked.length === 0) return { conditions: 0, notifications: 0 };
    const ids = locked.map((r) => r.condition_id);
    await tx`SELECT 1 FROM notification_outbox WHERE condition_id = ANY(${ids}::uuid[]) FOR UPDATE`;
    const [row] = await tx<ConditionBatch[]>`
      WITH doomed AS (
        SELECT c.condition_id FROM feed_condition c
        WHERE c.condition_id = ANY(${ids}::uuid[]) AND ${prunable(tx)}
      ), notifications AS (
        DELETE FROM notification_outbox WHERE condition_id IN (SELECT condition_id FROM doomed)
        RETURNING 1
      ), conditions AS (
        DELETE FROM feed_condition WHERE condition_id IN (SELECT condition_id FROM doomed)
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM conditions)::int AS conditions,
        (SELECT count(*) FROM notifications)::int AS notifications`;
    return row;
  };
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
 * `incident_verdict` and `incident_ack`, operator records that are never deleted, and
 * `feed_engine` (one row per engine).
 */
export const PRUNED_TABLES = [
  "alert",
  "alert_feature",
  "incident",
  "incident_sensor",
  "incident_event",
  "notification_outbox",
  "feed_condition",
] as const;

export type PrunedTable = (typeof PRUNED_TABLES)[number];

/** What the planner's catalogue and the statistics say of a pruned table: both cheap to read. */
export interface TableDeadRows {
  table: PrunedTable;
  /** Rows as of its last VACUUM or ANALYZE (`pg_class.reltuples`); -1 before the first. */
  reltuples: number;
  /**
   * Dead rows the statistics know of (`n_dead_tup`): deleted or updated since its last VACUUM,
   * re-estimated by each ANALYZE. PGlite forgets them when it stops.
   */
  dead: number;
}

/**
 * {@link TableDeadRows} of every pruned table (PostgreSQL 15 or later, PGlite): two short
 * statements, no table is read.
 */
export async function deadRows(sql: Sql): Promise<TableDeadRows[]> {
  // PGlite's one backend reports its counts at most once a second, when idle: those of the last
  // deletes would reach the statistics only after a VACUUM that had already removed their rows,
  // and count again as dead. Forced, they are reported as this statement ends.
  await sql`SELECT pg_stat_force_next_flush()`;
  return await sql<TableDeadRows[]>`
    SELECT t AS table, c.reltuples::float8 AS reltuples,
      pg_stat_get_dead_tuples(c.oid)::float8 AS dead
    FROM unnest(${[...PRUNED_TABLES]}::text[]) WITH ORDINALITY AS u (t, i)
    JOIN pg_class c ON c.oid = to_regclass(t)
    ORDER BY i`;
}

/**
 * Marks the space of deleted rows reusable and refreshes the planner's statistics, of `tables`
 * (all pruned ones by default). PGlite runs no autovacuum, so without this its files would keep
 * every deleted row's space and its planner would never learn how large the tables grew;
 * PostgreSQL's autovacuum does both on its own. One table per statement, so ingest's statements
 * get PGlite's connection in between.
 */
export async function vacuum(
  sql: Sql,
  tables: readonly PrunedTable[] = PRUNED_TABLES,
): Promise<void> {
  for (const table of tables) await sql.unsafe(`VACUUM (ANALYZE) ${table}`);
}

/** Refreshes the planner's statistics on `tables` (PGlite: no autoanalyze), one per statement. */
export async function analyze(
  sql: Sql,
  tables: readonly PrunedTable[] = PRUNED_TABLES,
): Promise<void> {
  for (const table of tables) await sql.unsafe(`ANALYZE ${table}`);
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
  conditions: number;
  oldest_alert_at: Date | null;
  oldest_incident_at: Date | null;
  error: string | null;
}

export async function recordStatus(sql: Sql, s: RetentionStatusRow): Promise<void> {
  await sql`
    INSERT INTO retention_status (singleton, alerts_days, incidents_days, every_s, started_at,
      finished_at, alerts, alert_features, incidents, notifications, conditions, oldest_alert_at,
      oldest_incident_at, error)
    VALUES (true, ${s.alerts_days}, ${s.incidents_days}, ${s.every_s}, ${s.started_at},
      ${s.finished_at}, ${s.alerts}, ${s.alert_features}, ${s.incidents}, ${s.notifications},
      ${s.conditions}, ${s.oldest_alert_at}, ${s.oldest_incident_at}, ${s.error})
    ON CONFLICT (singleton) DO UPDATE SET alerts_days = EXCLUDED.alerts_days,
      incidents_days = EXCLUDED.incidents_days, every_s = EXCLUDED.every_s,
      started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
      alerts = EXCLUDED.alerts, alert_features = EXCLUDED.alert_features,
      incidents = EXCLUDED.incidents, notifications = EXCLUDED.notifications,
      conditions = EXCLUDED.conditions, oldest_alert_at = EXCLUDED.oldest_alert_at,
      oldest_incident_at = EXCLUDED.oldest_incident_at, error = EXCLUDED.error`;
}
