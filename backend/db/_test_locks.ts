// Test helper for races on PostgreSQL: a second connection that holds locks, and waiting until others queue behind them.
import assert from "node:assert/strict";
import postgres from "postgres";
import type { Database } from "./database.ts";

/** A second connection to `db`'s PostgreSQL database and schema (`DATABASE_URL`); end it after. */
export async function otherConnection(db: Pick<Database, "sql">): Promise<postgres.Sql> {
  const [{ schema }] = await db.sql`SELECT current_schema() AS schema`;
  return postgres(process.env.DATABASE_URL as string, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema },
  });
}

/**
 * Runs `lock` in a transaction of `conn` and keeps that transaction open, its locks held, until
 * `release()` (which resolves once it committed).
 *
 * @example const held = await holdLocks(conn, (tx) => tx`SELECT 1 FROM silence FOR UPDATE`); await held.release();
 */
export async function holdLocks(
  conn: postgres.Sql,
  lock: (tx: postgres.Sql) => Promise<unknown>,
): Promise<{ release(): Promise<void> }> {
  let release = () => {};
  const mayRelease = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held = () => {};
  const locked = new Promise<void>((resolve) => {
    held = resolve;
  });
  const holding = conn.begin(async (tx) => {
    await lock(tx as unknown as postgres.Sql);
    held();
    await mayRelease;
  });
  await Promise.race([locked, holding]);
  return {
    async release() {
      release();
      await holding;
    },
  };
}

/** Waits until `n` sessions of this database wait for a lock (queued behind one held). */
export async function waitForLockWaits(sql: Database["sql"], n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [{ count }] = await sql`
      SELECT count(*)::int AS count FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND datname = current_database()`;
    if (count >= n) return;
    assert.ok(Date.now() < deadline, `${n} sessions never waited for the lock`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
