// Migration 0013 on PGlite and PostgreSQL: operator records restrict deleting their incident, and
// incidents 0011 dated by the engine's clock are dated by their first alert's arrival.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Sql } from "postgres";
import { testTargets } from "./_test_databases.ts";
import { loadMigrations, migrate } from "./migrate.ts";

const DAY_MS = 86_400_000;

async function insertIncident(sql: Sql, id: string, startedAt: Date): Promise<void> {
  const ended = new Date(startedAt.getTime() + 60_000);
  await sql`
    INSERT INTO incident (incident_id, stream_id, started_at, last_alert_at, resolved_at, max_score)
    VALUES (${id}, 'line-1', ${startedAt}, ${ended}, ${ended}, 0.99)`;
}

async function insertAlert(sql: Sql, incidentId: string, frameAt: Date, receivedAt: Date) {
  await sql`
    INSERT INTO alert (alert_id, stream_id, ts, frame_timestamp, anomaly_detected,
      num_anomalous_features, max_score, incident_id, event, incident_started_at, received_at)
    VALUES (${crypto.randomUUID()}, 'line-1', ${frameAt}, ${frameAt}, true, 1, 0.99, ${incidentId},
      'updated', ${frameAt}, ${receivedAt})`;
}

for (const target of testTargets()) {
  describe(`migration 0013 on ${target.kind}`, () => {
    test("0013 dates incidents that 0011 dated by their start by their first alert's arrival instead", async () => {
      const db = await target.open({ migrate: false });
      try {
        const all = await loadMigrations();
        await migrate(
          db.sql,
          all.filter((m) => m.version <= 10),
        );
        const now = Date.now();
        // Frames recorded two years ago, replayed and stored a week ago (alerts then 5 days ago).
        const replayed = crypto.randomUUID();
        await insertIncident(db.sql, replayed, new Date(now - 730 * DAY_MS));
        await insertAlert(
          db.sql,
          replayed,
          new Date(now - 730 * DAY_MS),
          new Date(now - 5 * DAY_MS),
        );
        await insertAlert(
          db.sql,
          replayed,
          new Date(now - 730 * DAY_MS + 1000),
          new Date(now - 7 * DAY_MS),
        );
        // An incident whose alerts arrived before it started by the engine's clock (a clock
        // ahead): 0011's date is the later one, and stays.
        const ahead = crypto.randomUUID();
        await insertIncident(db.sql, ahead, new Date(now - 100 * DAY_MS));
        await insertAlert(
          db.sql,
          ahead,
          new Date(now - 100 * DAY_MS),
          new Date(now - 101 * DAY_MS),
        );
        // No alert left to tell: 0011's date stays.
        const bare = crypto.randomUUID();
        await insertIncident(db.sql, bare, new Date(now - 400 * DAY_MS));

        assert.deepEqual(
          (
            await migrate(
              db.sql,
              all.filter((m) => m.version <= 12),
            )
          ).applied,
          [11, 12],
        );
        const storedAt = async (id: string) =>
          (
            await db.sql<{ stored_at: Date }[]>`
              SELECT stored_at FROM incident WHERE incident_id = ${id}`
          )[0].stored_at.getTime();
        const dated = {
          replayed: await storedAt(replayed),
          ahead: await storedAt(ahead),
          bare: await storedAt(bare),
        };
        assert.equal(dated.replayed, now - 730 * DAY_MS, "0011 dates it by its start");

        // 0011 ran two months ago; an incident stored since, 40 days ago, whose first alert has
        // gone by the alert horizon: its own date stays.
        await db.sql`
          UPDATE schema_migrations SET applied_at = now() - interval '60 days' WHERE version = 11`;
        const since = crypto.randomUUID();
        await insertIncident(db.sql, since, new Date(now - 40 * DAY_MS));
        await db.sql`
          UPDATE incident SET stored_at = now() - interval '40 days' WHERE incident_id = ${since}`;
        await insertAlert(db.sql, since, new Date(now - 10 * DAY_MS), new Date(now - 10 * DAY_MS));
        const sinceStored = await storedAt(since);

        assert.equal((await migrate(db.sql)).applied[0], 13);
        assert.equal(await storedAt(replayed), now - 7 * DAY_MS);
        assert.equal(await storedAt(ahead), dated.ahead);
        assert.equal(await storedAt(bare), dated.bare);
        assert.equal(await storedAt(since), sinceStored);
      } finally {
        await db.dispose();
      }
    });

    test("0013 refuses deleting an incident with a verdict or an acknowledgement", async () => {
      const db = await target.open();
      try {
        const [judged, acked, plain] = Array.from({ length: 3 }, () => crypto.randomUUID());
        for (const id of [judged, acked, plain]) await insertIncident(db.sql, id, new Date());
        await db.sql`
          INSERT INTO incident_verdict (incident_id, verdict, given_by, given_at)
          VALUES (${judged}, 'true_positive', 'Ana', now())`;
        await db.sql`
          INSERT INTO incident_ack (incident_id, acked_by, acked_at) VALUES (${acked}, 'Ana', now())`;
        for (const id of [judged, acked]) {
          await assert.rejects(db.sql`DELETE FROM incident WHERE incident_id = ${id}`, {
            // restrict_violation on PGlite (PostgreSQL 18), foreign_key_violation on PostgreSQL 15.
            code: /^23(001|503)$/,
          });
        }
        const [kept] = await db.sql<{ verdicts: number; acks: number; incidents: number }[]>`
          SELECT (SELECT count(*) FROM incident_verdict)::int AS verdicts,
            (SELECT count(*) FROM incident_ack)::int AS acks,
            (SELECT count(*) FROM incident)::int AS incidents`;
        assert.deepEqual({ ...kept }, { verdicts: 1, acks: 1, incidents: 3 });
        // Nobody acted on it: it goes, as before.
        assert.equal((await db.sql`DELETE FROM incident WHERE incident_id = ${plain}`).count, 1);
      } finally {
        await db.dispose();
      }
    });
  });
}
