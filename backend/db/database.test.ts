import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { testTargets } from "./_test_databases.ts";
import { parseTimestamptz } from "./database.ts";

test("parseTimestamptz reads PostgreSQL's text form, years before 100 included", () => {
  const iso = (s: string) => parseTimestamptz(s).toISOString();
  assert.equal(iso("2026-11-24 09:00:00+00"), "2026-11-24T09:00:00.000Z");
  assert.equal(iso("2026-11-24 10:00:00.123456+01"), "2026-11-24T09:00:00.123Z");
  assert.equal(iso("2026-11-24 14:30:00+05:30"), "2026-11-24T09:00:00.000Z");
  assert.equal(iso("0050-01-01 00:00:00+00"), "0050-01-01T00:00:00.000Z");
  assert.ok(Number.isNaN(parseTimestamptz("infinity").getTime()));
});

for (const target of testTargets()) {
  describe(`database connection on ${target.kind}`, () => {
    test("times come back as stored, in UTC, whatever the year", async () => {
      const db = await target.open({ migrate: false });
      try {
        const [{ zone }] = await db.sql`SELECT current_setting('TimeZone') AS zone`;
        assert.equal(zone, "UTC");
        for (const at of [
          "0050-01-01T00:00:00.000Z",
          "1800-01-01T00:00:00.000Z",
          "2026-03-29T01:30:00.250Z",
        ]) {
          const [{ t }] = await db.sql`SELECT ${new Date(at)}::timestamptz AS t`;
          assert.equal((t as Date).toISOString(), at);
        }
        // An invalid Date is refused, again and again, and the connection goes on (a throw
        // while postgres.js wrote the query left PGlite's one connection stuck by the third).
        const bad = new Date(Number.NaN);
        const within = <T>(answer: Promise<T>) =>
          Promise.race([
            answer,
            new Promise<never>((_, reject) =>
              setTimeout(() => reject(new Error("no answer: the connection is stuck")), 5000),
            ),
          ]);
        for (let i = 0; i < 4; i++) {
          await assert.rejects(
            within(
              db.sql`SELECT count(*) FROM generate_series(1, 3) g
                WHERE now() >= ${bad} AND now() < ${bad} LIMIT ${5}`.execute(),
            ),
            (e: Error) => !/stuck/.test(e.message),
          );
        }
        const [{ one }] = await within(db.sql`SELECT 1 AS one`.execute());
        assert.equal(one, 1);
      } finally {
        await db.dispose();
      }
    });
  });
}
