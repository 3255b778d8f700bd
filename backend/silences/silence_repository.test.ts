// The silence repository's read for the console banner on PGlite and PostgreSQL: the active silences ending first, counted, whatever their creation order.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { testTargets } from "../db/_test_databases.ts";
import { createSilenceRepository } from "./silence_repository.ts";

const HOUR = 3_600_000;
const now = Date.parse("2026-11-24T09:00:00Z");

for (const target of testTargets()) {
  describe(`silence repository on ${target.kind}`, () => {
    test("activeByEnd gives the active silences ending first, and counts, with over 200 newer ones active", async () => {
      const db = await target.open();
      try {
        const at = (t: number) => createSilenceRepository(db, () => t);
        const silence = (createdAt: number, body: Record<string, unknown>) =>
          at(createdAt).create({ reason: "maintenance", created_by: "Ana", ...body });
        // Created first, ending within the hour: the newest 200 by creation leave it out.
        const soon = await silence(now - 5 * HOUR, {
          matchers: { stream: "line-1" },
          ends_at: new Date(now + 0.5 * HOUR).toISOString(),
        });
        const later = await silence(now - 5 * HOUR + 1, {
          matchers: { stream: "line-2" },
          ends_at: new Date(now + 1.5 * HOUR).toISOString(),
        });
        for (let i = 0; i < 205; i++) {
          await silence(now - 4 * HOUR + i * 1000, {
            matchers: { stream: "line-3", sensors: [`feature_${i}`] },
            ends_at: new Date(now + 48 * HOUR + i * 1000).toISOString(),
          });
        }
        // Not active: pending, over, expired early; and one recurring (active, windows apart).
        await silence(now - HOUR, {
          matchers: { stream: "line-4" },
          starts_at: new Date(now + HOUR).toISOString(),
          ends_at: new Date(now + 2 * HOUR).toISOString(),
        });
        await silence(now - 3 * HOUR, {
          matchers: { stream: "line-5" },
          ends_at: new Date(now - HOUR).toISOString(),
        });
        const expired = await silence(now - 3 * HOUR, {
          matchers: { stream: "line-6" },
          ends_at: new Date(now + 0.2 * HOUR).toISOString(),
        });
        await at(now - 2 * HOUR).expire(expired.silence_id, { by: "Ana" });
        const weekly = await silence(now - 3 * HOUR, {
          matchers: { stream: "line-7" },
          ends_at: new Date(now + 30 * 24 * HOUR).toISOString(),
          recurrence: { days: ["sun"], from: "01:00", to: "04:00", tz: "UTC" },
        });
        assert.equal((await at(now).list({ state: "active", limit: 200 })).silences.length, 200);

        const read = await at(now).activeByEnd({ limit: 4, endingWithinMs: 2 * HOUR });
        assert.deepEqual(
          read.first.map((s) => s.silence_id),
          [soon.silence_id, later.silence_id, ...read.first.slice(2).map((s) => s.silence_id)],
        );
        assert.equal(read.first.length, 4);
        assert.ok(read.first.slice(2).every((s) => s.matchers.stream === "line-3"));
        assert.ok(read.first.every((s) => s.state === "active"));
        assert.equal(read.active, 2 + 205 + 1);
        assert.equal(read.ending_soon, 2);
        assert.deepEqual(
          read.recurring.map((s) => s.silence_id),
          [weekly.silence_id],
        );
      } finally {
        await db.dispose();
      }
    });
  });
}
