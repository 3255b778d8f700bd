// Two expiries of one silence at once on PostgreSQL (several connections): the first records who,
// when and why; the second finds it expired and changes nothing.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { testTargets } from "../db/_test_databases.ts";
import { holdLocks, otherConnection, waitForLockWaits } from "../db/_test_locks.ts";
import { createSilenceRepository } from "./silence_repository.ts";

for (const target of testTargets().filter((t) => t.kind === "postgres")) {
  describe(`silence expiry on ${target.kind}`, () => {
    test("of two expiries queued behind a lock, the later clock first, one is recorded", async () => {
      const db = await target.open();
      const locker = await otherConnection(db);
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
        const holding = await holdLocks(
          locker,
          (tx) => tx`SELECT 1 FROM silence WHERE silence_id = ${s.silence_id} FOR UPDATE`,
        );
        const byBen = late.expire(s.silence_id, { by: "Ben", reason: "done" });
        await waitForLockWaits(db.sql, 1);
        const byAnn = early.expire(s.silence_id, { by: "Ann", reason: "also done" });
        await waitForLockWaits(db.sql, 2);
        await holding.release();
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
