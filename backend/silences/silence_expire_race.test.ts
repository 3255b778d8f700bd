// Two expiries of one silence at once on PostgreSQL (several connections): the first records who,
// when and why; the second finds it expired and changes nothing.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import postgres from "postgres";
import { testTargets } from "../db/_test_databases.ts";
import { createSilenceRepository } from "./silence_repository.ts";

for (const target of testTargets().filter((t) => t.kind === "postgres")) {
  describe(`silence expiry on ${target.kind}`, () => {
    test("of two expiries queued behind a lock, the later clock first, one is recorded", async () => {
      const db = await target.open();
      const [{ schema }] = await db.sql`SELECT current_schema() AS schema`;
      const locker = postgres(process.env.DATABASE_URL as string, {
        max: 1,
        onnotice: () => {},
        connection: { search_path: schema },
      });
      try {
        const base = Date.parse("2026-11-24T09:00:00Z");
        const early = createSilenceRepository(db, () => base + 100);
        const late = createSilenceRepository(db, () => base + 101);
        const s = await early.create({
          matchers: { stream: "line-1" },
          ends_at: new Date(base + 3_600_000).toISOString(),
          reason: "pump swap",
          created_by: "Ana",
        });
        // The row is held, so both updates queue: the one with the later time first.
        let release = () => {};
        const mayRelease = new Promise<void>((resolve) => {
          release = resolve;
        });
        // Sessions waiting for a row lock: the queued expiries.
        const waiting = async (n: number) => {
          const [{ count }] = await db.sql`
            SELECT count(*)::int AS count FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND datname = current_database()`;
          return count >= n;
        };
        const waitFor = async (n: number) => {
          const deadline = Date.now() + 10_000;
          while (!(await waiting(n))) {
            assert.ok(Date.now() < deadline, `${n} expiries never waited for the row`);
            await new Promise((r) => setTimeout(r, 10));
          }
        };
        let held = () => {};
        const locked = new Promise<void>((resolve) => {
          held = resolve;
        });
        const holding = locker.begin(async (tx) => {
          await tx`SELECT 1 FROM silence WHERE silence_id = ${s.silence_id} FOR UPDATE`;
          held();
          await mayRelease;
        });
        await locked;
        const byBen = late.expire(s.silence_id, { by: "Ben", reason: "done" });
        await waitFor(1);
        const byAnn = early.expire(s.silence_id, { by: "Ann", reason: "also done" });
        await waitFor(2);
        release();
        await holding;
        const answers = await Promise.all([byBen, byAnn]);
        assert.deepEqual(
          answers.map((a) => a?.changed),
          [true, false],
        );
        const [row] = await db.sql`SELECT expired_by FROM silence`;
        assert.equal(row.expired_by, "Ben");
        const audit =
          await db.sql`SELECT actor_name FROM audit_event WHERE action = 'silence.expire'`;
        assert.deepEqual(
          audit.map((a) => a.actor_name),
          ["Ben"],
        );
      } finally {
        await locker.end();
        await db.dispose();
      }
    });
  });
}
