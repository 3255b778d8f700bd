import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createAlertRepository } from "../alerts/alert_repository.ts";
import { testTargets } from "./_test_databases.ts";
import { openDatabase } from "./database.ts";
import { loadMigrations, migrate } from "./migrate.ts";

for (const target of testTargets()) {
  describe(`migrations on ${target.kind}`, () => {
    test("migrate applies every migration to an empty database, then nothing", async () => {
      const db = await target.open({ migrate: false });
      try {
        const all = await loadMigrations();
        const first = await migrate(db.sql);
        assert.deepEqual(
          first.applied,
          all.map((m) => m.version),
        );
        const tables = await db.sql`
          SELECT table_name FROM information_schema.tables
          WHERE table_schema = current_schema() ORDER BY table_name`;
        assert.deepEqual(
          tables.map((t) => t.table_name),
          [
            "alert",
            "alert_feature",
            "incident",
            "incident_ack",
            "incident_event",
            "incident_sensor",
            "schema_migrations",
          ],
        );
        const again = await migrate(db.sql);
        assert.deepEqual(again, { applied: [], version: first.version });
      } finally {
        await db.dispose();
      }
    });

    test("migrate applies only a new migration to an already-migrated database", async () => {
      const db = await target.open();
      try {
        const all = await loadMigrations();
        const next = { version: 9001, name: "note", sql: "ALTER TABLE alert ADD COLUMN note text" };
        assert.deepEqual(await migrate(db.sql, [...all, next]), { applied: [9001], version: 9001 });
        const [column] = await db.sql`
          SELECT column_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = 'alert' AND column_name = 'note'`;
        assert.equal(column.column_name, "note");
      } finally {
        await db.dispose();
      }
    });

    test("migrate refuses a migration edited after it was applied, changing nothing", async () => {
      const db = await target.open();
      try {
        const [first, ...rest] = await loadMigrations();
        const edited = { ...first, sql: `${first.sql}\nCREATE TABLE sneaky (id int);` };
        await assert.rejects(migrate(db.sql, [edited, ...rest]), /changed after it was applied/);
        const [sneaky] = await db.sql`SELECT to_regclass('sneaky') AS t`;
        assert.equal(sneaky.t, null);
      } finally {
        await db.dispose();
      }
    });

    test("concurrent migrate calls apply each migration once", async () => {
      const db = await target.open({ migrate: false });
      try {
        const results = await Promise.all([migrate(db.sql), migrate(db.sql), migrate(db.sql)]);
        assert.equal(results.flatMap((r) => r.applied).length, (await loadMigrations()).length);
      } finally {
        await db.dispose();
      }
    });
  });
}

describe("database persistence", () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  const alert = {
    alert_id: crypto.randomUUID(),
    stream_id: "default",
    timestamp: new Date("2026-11-24T09:00:00.000Z"),
    frame_timestamp: null,
    anomaly_detected: true,
    num_anomalous_features: 1,
    max_score: 0.97,
    threshold: 0.9,
    model_version: "m@1",
    latency_ms: 1,
    anomalous_features: [{ feature_idx: 3, score: 0.97, feature: "feature_3" }],
  };

  test("PGlite in PGLITE_DATA_DIR keeps alerts across a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pglite-"));
    dirs.push(dir);
    const first = await openDatabase({ pgliteDataDir: dir });
    await migrate(first.sql);
    assert.equal(await createAlertRepository(first).insert(alert), "stored");
    await first.close();

    const second = await openDatabase({ pgliteDataDir: dir });
    try {
      assert.deepEqual((await migrate(second.sql)).applied, []);
      const stored = await createAlertRepository(second).get(alert.alert_id);
      assert.equal(stored?.anomalous_features[0].feature, "feature_3");
      assert.equal(await createAlertRepository(second).insert(alert), "duplicate");
    } finally {
      await second.close();
    }
  });

  for (const target of testTargets().filter((t) => t.kind === "postgres")) {
    test("PostgreSQL keeps alerts across a reconnect of the backend's pool", async () => {
      const db = await target.open();
      try {
        const id = crypto.randomUUID();
        await createAlertRepository(db).insert({ ...alert, alert_id: id });
        await db.sql.end();
        const again = await db.reopen();
        try {
          assert.equal((await createAlertRepository(again).get(id))?.alert_id, id);
        } finally {
          await again.close();
        }
      } finally {
        await db.dispose();
      }
    });
  }
});
