// The pruner's upkeep on PGlite: which pruned tables it vacuums, and when (none on PostgreSQL).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { Sql } from "postgres";
import { testTargets } from "../db/_test_databases.ts";
import { openDatabase } from "../db/database.ts";
import { migrate } from "../db/migrate.ts";
import { PRUNED_TABLES } from "./prune_queries.ts";
import { createPruner, VACUUM_SCALE_FACTOR, VACUUM_THRESHOLD } from "./pruner.ts";

const DAY_MS = 86_400_000;
const T0 = Date.parse("2026-01-01T00:00:00Z");
const ALERTS = 1_000;

/** `ALERTS` alerts without features, received one a second from `T0`. */
async function seedAlerts(sql: Sql): Promise<void> {
  await sql`
    INSERT INTO alert (alert_id, stream_id, ts, anomaly_detected, num_anomalous_features,
      max_score, received_at)
    SELECT gen_random_uuid(), 'line-a', t, true, 0, 1, t
    FROM generate_series(0, ${ALERTS - 1}) AS g,
      LATERAL (SELECT ${new Date(T0)}::timestamptz + make_interval(secs => g) AS t) AS at`;
}

/** Manual VACUUMs of each pruned table so far (autovacuum's are counted apart). */
async function vacuumCounts(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql<{ table: string; n: number }[]>`
    SELECT t AS table, pg_stat_get_vacuum_count(to_regclass(t))::int AS n
    FROM unnest(${[...PRUNED_TABLES]}::text[]) AS t`;
  return Object.fromEntries(rows.map((r) => [r.table, r.n]));
}

const none = Object.fromEntries(PRUNED_TABLES.map((t) => [t, 0]));

for (const target of testTargets()) {
  describe(`the pruner's upkeep on ${target.kind}`, () => {
    const pglite = target.kind === "pglite";

    test("the pruner vacuums a table only once enough of it was deleted since its last vacuum, and only that table", async () => {
      const db = await target.open();
      try {
        await seedAlerts(db.sql);
        // Alert i (from 0) is past the 30-day horizon once the clock is past T0 + 30 days + i s.
        let clock = T0 + 30 * DAY_MS - 60_000;
        const pruner = createPruner({
          database: db,
          alertsDays: 30,
          incidentsDays: 365,
          everyMs: 60_000,
          batchSize: 100,
          now: () => clock,
        });
        const runAt = async (seconds: number) => {
          clock = T0 + 30 * DAY_MS + seconds * 1000;
          const run = await pruner.runOnce();
          assert.equal(run.error, null);
          return run;
        };

        // The first run deletes nothing and gives the planner the table's size: 1,000 rows, so
        // `alert` is vacuumed past 50 + 20% of 1,000 = 250 rows deleted.
        const first = await runAt(-60);
        assert.equal(first.maintenance, pglite ? "analyze" : null);
        assert.equal(VACUUM_THRESHOLD + VACUUM_SCALE_FACTOR * ALERTS, 250);

        const few = await runAt(5.5);
        assert.equal(few.alerts, 6);
        assert.equal(few.maintenance, null, "6 of 1,000 rows deleted: no table vacuumed");
        assert.deepEqual(few.vacuumed, []);
        const more = await runAt(240.5);
        assert.equal(more.alerts, 235);
        assert.equal(more.maintenance, null, "241 of 1,000 rows deleted since: still none");
        assert.deepEqual(await vacuumCounts(db.sql), none);

        const enough = await runAt(260.5);
        assert.equal(enough.alerts, 20);
        assert.equal(enough.maintenance, pglite ? "vacuum" : null, "261 deleted since: past 250");
        assert.deepEqual(enough.vacuumed, pglite ? ["alert"] : []);
        assert.deepEqual(await vacuumCounts(db.sql), pglite ? { ...none, alert: 1 } : none);

        // Counting starts again from the vacuum.
        const after = await runAt(300.5);
        assert.equal(after.alerts, 40);
        assert.equal(after.maintenance, null);
        assert.deepEqual(await vacuumCounts(db.sql), pglite ? { ...none, alert: 1 } : none);
      } finally {
        await db.dispose();
      }
    });
  });
}

test("a restarted PGlite backend vacuums what its pruner deleted before the restart", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "pglite-upkeep-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const options = { alertsDays: 30, incidentsDays: 365, everyMs: 60_000, batchSize: 100 };
  let clock = T0 + 30 * DAY_MS - 60_000;
  const before = await openDatabase({ pgliteDataDir: join(dir, "data") });
  try {
    await migrate(before.sql);
    await seedAlerts(before.sql);
    const pruner = createPruner({ ...options, database: before, now: () => clock });
    assert.equal((await pruner.runOnce()).maintenance, "analyze");
    clock = T0 + 30 * DAY_MS + 240_500;
    const run = await pruner.runOnce();
    assert.equal(run.alerts, 241);
    assert.equal(run.maintenance, null, "241 of 1,000: not yet");
  } finally {
    await before.close();
  }

  // The new process knows nothing of those 241 dead rows until its first ANALYZE counts them.
  const after = await openDatabase({ pgliteDataDir: join(dir, "data") });
  try {
    const pruner = createPruner({ ...options, database: after, now: () => clock });
    clock += 5_000;
    const first = await pruner.runOnce();
    assert.equal(first.alerts, 5);
    assert.equal(first.maintenance, "analyze");
    // 247 dead beside 754 rows: past 50 + 20% of 754 (201), though this pruner deleted 6 of them.
    clock += 1_000;
    const second = await pruner.runOnce();
    assert.equal(second.alerts, 1);
    assert.equal(second.maintenance, "vacuum");
    assert.deepEqual(second.vacuumed, ["alert"]);
    assert.deepEqual(await vacuumCounts(after.sql), { ...none, alert: 1 });
  } finally {
    await after.close();
  }
});
