import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
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
            "audit_event",
            "feed_condition",
            "feed_engine",
            "incident",
            "incident_ack",
            "incident_event",
            "incident_sensor",
            "incident_verdict",
            "notification_outbox",
            "retention_status",
            "schema_migrations",
            "session_ended",
            "silence",
            "stream_retirement",
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

    test("migrate refuses a database a newer release migrated, naming both versions, changing nothing", async () => {
      const db = await target.open();
      try {
        const all = await loadMigrations();
        const newer = { version: 9002, name: "later", sql: "CREATE TABLE later_table (id int)" };
        await migrate(db.sql, [...all, newer]);
        // This release again (a rollback), with a migration of its own it has not applied yet.
        const own = { version: 9001, name: "own", sql: "CREATE TABLE own_table (id int)" };
        await assert.rejects(
          migrate(db.sql, [...all, own]),
          /migrated by a newer release \(schema version 9002; this release knows up to 9001\): start that release or a later one, or restore a backup/,
        );
        const [table] = await db.sql`SELECT to_regclass('own_table') AS t`;
        assert.equal(table.t, null, "nothing applied");
        assert.deepEqual(
          (await migrate(db.sql, [...all, newer])).applied,
          [],
          "the newer one runs",
        );
      } finally {
        await db.dispose();
      }
    });

    test("a database migrated from a CRLF checkout starts from an LF one, and the other way", async () => {
      const db = await target.open({ migrate: false });
      try {
        const all = await loadMigrations();
        const crlf = all.map((m) => ({ ...m, sql: m.sql.replaceAll("\n", "\r\n") }));
        await migrate(db.sql, crlf);
        assert.deepEqual((await migrate(db.sql, all)).applied, []);
        assert.deepEqual((await migrate(db.sql, crlf)).applied, []);
      } finally {
        await db.dispose();
      }
    });

    test("a database migrated with 0006's first text starts, and 0018 brings its silences level", async () => {
      const db = await target.open({ migrate: false });
      try {
        const all = await loadMigrations();
        const first = await readFile(
          new URL("./_test/0006_operations_first.sql", import.meta.url),
          "utf8",
        );
        const upToSix = all
          .filter((m) => m.version <= 6)
          .map((m) => (m.version === 6 ? { ...m, sql: first } : m));
        await migrate(db.sql, upToSix);
        const [before] = await db.sql`
          SELECT count(*)::int AS n FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = 'silence'
            AND column_name = 'expired_reason'`;
        assert.equal(before.n, 0);

        const result = await migrate(db.sql);
        assert.deepEqual(
          result.applied,
          all.filter((m) => m.version > 6).map((m) => m.version),
        );
        const [column] = await db.sql`
          SELECT count(*)::int AS n FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = 'silence'
            AND column_name = 'expired_reason'`;
        assert.equal(column.n, 1);
        const [index] = await db.sql`SELECT to_regclass('silence_created_idx') AS i`;
        assert.notEqual(index.i, null);
        const now = new Date();
        await assert.rejects(
          db.sql`
            INSERT INTO silence (silence_id, stream_glob, starts_at, ends_at, reason, created_by,
                                 created_at, expired_at)
            VALUES (${crypto.randomUUID()}, '*', ${now}, ${new Date(now.getTime() + 60_000)},
                    'check', 'ana', ${now}, ${now})`,
          /check constraint/,
        );
        // On a database migrated with 0006's final text, 0018 adds nothing (one expiry check).
        const fresh = await target.open({ migrate: false });
        try {
          await migrate(fresh.sql);
          const [checks] = await fresh.sql`
            SELECT count(*)::int AS n FROM pg_constraint
            WHERE conrelid = 'silence'::regclass AND contype = 'c'
              AND pg_get_constraintdef(oid) LIKE '%expired_by IS NULL%'`;
          assert.equal(checks.n, 1);
        } finally {
          await fresh.dispose();
        }
      } finally {
        await db.dispose();
      }
    });

    test("0004 gives incidents stored before it the versions of their latest and earliest alerts", async () => {
      const db = await target.open({ migrate: false });
      try {
        const all = await loadMigrations();
        await migrate(
          db.sql,
          all.filter((m) => m.version < 4),
        );
        const incident = crypto.randomUUID();
        const at = (s: number) => new Date(Date.parse("2026-11-24T09:00:00Z") + s * 1000);
        await db.sql`
          INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, max_score)
          VALUES (${incident}, 'default', ${at(0)}, ${at(9)}, 1)`;
        const alerts = [
          // The second is received first but scored later: the frame time decides.
          { id: crypto.randomUUID(), ts: at(20), frame: at(0), version: "1.0.0" },
          { id: crypto.randomUUID(), ts: at(10), frame: at(9), version: "1.1.0" },
        ];
        for (const a of alerts) {
          await db.sql`
            INSERT INTO alert (alert_id, stream_id, ts, frame_timestamp, anomaly_detected,
              num_anomalous_features, max_score, model_version, incident_id, event,
              incident_started_at)
            VALUES (${a.id}, 'default', ${a.ts}, ${a.frame}, true, 1, 1, ${a.version},
              ${incident}, 'updated', ${at(0)})`;
        }
        assert.deepEqual(
          (
            await migrate(
              db.sql,
              all.filter((m) => m.version <= 4),
            )
          ).applied,
          [4],
        );
        const [row] = await db.sql`
          SELECT model_name, model_version, last_alert_id, opened_model_version, first_alert_id
          FROM incident WHERE incident_id = ${incident}`;
        assert.deepEqual(
          { ...row },
          {
            model_name: null,
            model_version: "1.1.0",
            last_alert_id: alerts[1].id,
            opened_model_version: "1.0.0",
            first_alert_id: alerts[0].id,
          },
        );
      } finally {
        await db.dispose();
      }
    });

    test("0005 stores verdicts of the four kinds only", async () => {
      const db = await target.open();
      try {
        const incident = crypto.randomUUID();
        await db.sql`
          INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, max_score)
          VALUES (${incident}, 'default', now(), now(), 1)`;
        const give = (verdict: string) => db.sql`
          INSERT INTO incident_verdict (incident_id, verdict, given_by, given_at)
          VALUES (${incident}, ${verdict}, 'Ana', now())`;
        for (const kind of ["true_positive", "false_positive", "maintenance", "sensor_fault"]) {
          await give(kind);
        }
        await assert.rejects(give("unsure"), (e: { code?: string }) => e.code === "23514");
        const [n] = await db.sql`SELECT count(*)::int AS n FROM incident_verdict`;
        assert.equal(n.n, 4);
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
