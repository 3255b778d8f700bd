// The outbox claim under a backlog: rows it reads per claim (a receiver down for hours leaves thousands pending, claimed every second).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Sql } from "postgres";
import { type TestDatabase, tableReads, testTargets } from "../db/_test_databases.ts";
import { createOutboxRepository } from "./outbox_repository.ts";

const PENDING = 2000;
const LIMIT = 4;
const T0 = new Date("2026-01-01T00:00:00Z");
const NOW = new Date("2026-02-01T00:00:00Z");

/**
 * `PENDING` messages pending on `route`, due, message `n` planned at T0 + n s: two per incident
 * (n = 2k and 2k + 1), every tenth about a feed condition of its own instead; message 5 in flight.
 */
async function backlog(db: TestDatabase, route: string) {
  await db.sql`
    INSERT INTO notification_outbox (message_id, route, event_key, incident_id, condition_id,
      event, event_at, body, created_at, next_attempt_at, locked_until)
    SELECT 'msg_' || lpad(g::text, 5, '0'), ${route}, ${route} || '/' || g,
      CASE WHEN g % 10 <> 0 THEN md5(${route} || (g / 2)::text)::uuid END,
      CASE WHEN g % 10 = 0 THEN md5(${route} || 'c' || g::text)::uuid END,
      CASE WHEN g % 10 = 0 THEN 'condition_opened' ELSE 'opened' END,
      ${T0}::timestamptz + g * interval '1 second', '{}', ${T0}, ${T0},
      CASE WHEN g = 5 THEN ${NOW}::timestamptz + interval '1 minute' END
    FROM generate_series(1, ${PENDING}) g`;
}

/** Claims on `route` in a transaction, with the rows it read from the outbox. */
async function claimCounted(db: TestDatabase, route: string) {
  return await db.sql.begin(async (tx) => {
    const before = await tableReads(tx, "notification_outbox");
    // On the transaction's connection, which the counters are of.
    const outbox = createOutboxRepository({ sql: tx as unknown as Sql, recover() {} });
    const claimed = await outbox.claim(route, LIMIT, NOW, new Date(NOW.getTime() + 60_000));
    const after = await tableReads(tx, "notification_outbox");
    return {
      claimed: claimed.map((m) => m.message_id).sort(),
      read: after.seqRows + after.indexRows - before.seqRows - before.indexRows,
    };
  });
}

// Each message is read once to find the heads, and each head taken (or skipped) at most once
// more: about (LIMIT + 2) * PENDING at worst. Comparing every pair read 3.2 M rows here.
const MOST_READ = (LIMIT + 2) * PENDING;
// Heads in order: 1, 2 (3 waits for it), 4 (its incident's 5 is in flight), 6, 8.
const HEADS_TAKEN = ["msg_00001", "msg_00002", "msg_00006", "msg_00008"];

/** What the outbox holds before the backlog: nothing, or a quiet history the planner analysed. */
const BEFORE: [string, (db: TestDatabase) => Promise<unknown>][] = [
  [
    "claim reads a route's pending messages a bounded number of times, not once per pair",
    async () => {},
  ],
  [
    "claim stays bounded when the statistics were taken while nothing was pending",
    // A quiet outbox analysed (as autovacuum does), then a receiver down: the planner believes
    // the route has no pending message at all.
    async (db) => {
      await db.sql`
        INSERT INTO notification_outbox (message_id, route, event_key, incident_id, event,
          event_at, body, created_at, next_attempt_at, state, done_at)
        SELECT 'old_' || g, 'ops', 'old/' || g, md5('old' || g::text)::uuid, 'opened', ${T0},
          '{}', ${T0}, ${T0}, 'delivered', ${T0}
        FROM generate_series(1, 20000) g`;
      await db.sql`ANALYZE notification_outbox`;
    },
  ],
];

for (const target of testTargets()) {
  describe(`outbox claim on ${target.kind}`, () => {
    for (const [name, before] of BEFORE) {
      test(name, async () => {
        const db = await target.open();
        try {
          await before(db);
          await backlog(db, "ops");
          const { claimed, read } = await claimCounted(db, "ops");
          assert.deepEqual(claimed, HEADS_TAKEN);
          assert.ok(read <= MOST_READ, `read ${read} outbox rows for ${PENDING} pending`);
        } finally {
          await db.dispose();
        }
      });
    }
  });
}
