// What the Health page shows of the database: its size, the oldest rows kept and the last prune.
import { cancelQuietly, type Database } from "../db/database.ts";

/** The last prune as recorded by whichever backend ran it, with the horizons it ran under. */
export interface LastPrune {
  alerts_days: number;
  incidents_days: number;
  every_s: number;
  started_at: string;
  finished_at: string;
  alerts: number;
  alert_features: number;
  incidents: number;
  notifications: number;
  /** Ended feed conditions (0 in a row recorded before they were pruned). */
  conditions: number;
  error: string | null;
}

export interface DatabaseHealth {
  /** `pg_database_size`: everything in the database, other schemas included. */
  size_bytes: number;
  /** This schema's tables with their indexes and TOAST, all together. */
  tables_bytes: number;
  /** This schema's largest tables, largest first. */
  largest: { name: string; bytes: number }[];
  /** When the oldest alert kept was received, and the oldest incident kept started. */
  oldest_alert_at: string | null;
  oldest_incident_at: string | null;
  /** Null until a backend with retention on has pruned this database once. */
  last_prune: LastPrune | null;
}

const LARGEST = 5;

interface Row {
  size_bytes: number;
  tables_bytes: number;
  largest: { name: string; bytes: number }[] | null;
  oldest_alert_at: Date | null;
  oldest_incident_at: Date | null;
  last_prune: (Omit<LastPrune, "started_at" | "finished_at"> & Record<string, unknown>) | null;
}

const iso = (s: unknown) => new Date(String(s)).toISOString();

/**
 * Reads the database's health in one statement (both minima walk an index), cancelled when
 * `signal` aborts. Works the same on PostgreSQL and PGlite.
 *
 * @example const health = await readDatabaseHealth(database, AbortSignal.timeout(2000));
 */
export async function readDatabaseHealth(
  database: Pick<Database, "sql">,
  signal: AbortSignal,
): Promise<DatabaseHealth> {
  const sql = database.sql;
  const query = sql<Row[]>`
    WITH ours AS (
      SELECT c.relname AS name, pg_total_relation_size(c.oid)::float8 AS bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'r'
    )
    SELECT pg_database_size(current_database())::float8 AS size_bytes,
      (SELECT coalesce(sum(bytes), 0) FROM ours)::float8 AS tables_bytes,
      (SELECT json_agg(t ORDER BY t.bytes DESC, t.name)
        FROM (SELECT * FROM ours ORDER BY bytes DESC, name LIMIT ${LARGEST}) t) AS largest,
      (SELECT min(received_at) FROM alert) AS oldest_alert_at,
      (SELECT min(started_at) FROM incident) AS oldest_incident_at,
      (SELECT row_to_json(s) FROM retention_status s) AS last_prune`.execute();
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
  query.catch(() => {});
  let row: Row;
  try {
    [row] = await Promise.race([query, aborted]);
  } finally {
    if (signal.aborted) cancelQuietly(query);
  }
  const p = row.last_prune;
  return {
    size_bytes: row.size_bytes,
    tables_bytes: row.tables_bytes,
    largest: row.largest ?? [],
    oldest_alert_at: row.oldest_alert_at?.toISOString() ?? null,
    oldest_incident_at: row.oldest_incident_at?.toISOString() ?? null,
    last_prune: p
      ? {
          alerts_days: p.alerts_days,
          incidents_days: p.incidents_days,
          every_s: p.every_s,
          started_at: iso(p.started_at),
          finished_at: iso(p.finished_at),
          alerts: p.alerts,
          alert_features: p.alert_features,
          incidents: p.incidents,
          notifications: p.notifications,
          conditions: p.conditions,
          error: p.error,
        }
      : null,
  };
}
