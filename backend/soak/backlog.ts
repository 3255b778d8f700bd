// The soak's backlog: alerts already past the retention horizon, with evidence, for the first prune to delete while ingest runs.
import type { Sql } from "postgres";

const STREAM = "soak-backlog";
// Per statement, so PGlite (one statement at a time) is never held long by the set-up either.
const CHUNK = 200;

/**
 * Inserts `alerts` alerts received `ageS` seconds ago, each with `features` features carrying a
 * 300-reading history (about 3 kB each, like the engine's evidence), and returns how many.
 */
export async function insertBacklog(
  sql: Sql,
  o: { alerts: number; features: number; ageS: number },
): Promise<number> {
  const history = JSON.stringify({
    start: new Date(Date.now() - o.ageS * 1000 - 300_000).toISOString(),
    step_ms: 1000,
    values: Array.from({ length: 300 }, (_, i) => Math.round(1000 * Math.sin(i / 7)) / 10),
    onset: 280,
  });
  for (let done = 0; done < o.alerts; done += CHUNK) {
    const n = Math.min(CHUNK, o.alerts - done);
    await sql`
      WITH a AS (
        INSERT INTO alert (alert_id, stream_id, ts, anomaly_detected, num_anomalous_features,
          max_score, received_at)
        SELECT gen_random_uuid(), ${STREAM}, now() - make_interval(secs => ${o.ageS}), true,
          ${o.features}, 0.99, now() - make_interval(secs => ${o.ageS})
        FROM generate_series(1, ${n})
        RETURNING alert_id, ts
      )
      INSERT INTO alert_feature (alert_id, feature_idx, score, ts, stream_id, history)
      SELECT a.alert_id, f, 0.95, a.ts, ${STREAM}, ${history}::jsonb
      FROM a, generate_series(1, ${o.features}) f`;
  }
  return o.alerts;
}
