// Test helper: a transaction held open on a second connection (PostgreSQL), to make a statement of the code under test wait at a chosen point.
import type { Sql } from "postgres";
import type { TestDatabase } from "../db/_test_databases.ts";
import { waitFor } from "./spawn_service.ts";

export interface HeldTransaction {
  /** Commits the held transaction and closes its connection; resolves once both are done (again: the same). */
  release(): Promise<void>;
}

/**
 * Opens a second connection to `db`, runs `work` in a transaction there (taking its locks) and
 * keeps the transaction open until `release()`. Resolves once `work` is done.
 *
 * @example
 * const held = await holdTransaction(db, (tx) => tx`LOCK TABLE feed_condition IN ACCESS EXCLUSIVE MODE`);
 * const pass = notify.tick(); await untilSomeoneWaitsOnALock(db); ...; await held.release(); await pass;
 */
export async function holdTransaction(
  db: TestDatabase,
  work: (tx: Sql) => Promise<unknown>,
): Promise<HeldTransaction> {
  const other = await db.reopen();
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let worked!: () => void;
  let failed!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    worked = resolve;
    failed = reject;
  });
  const transaction = other.sql
    .begin(async (tx) => {
      await work(tx as unknown as Sql);
      worked();
      await finished;
    })
    .catch((error) => failed(error));
  try {
    await done;
  } catch (error) {
    await other.close();
    throw error;
  }
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= (async () => {
        finish();
        await transaction;
        await other.close();
      })();
      return released;
    },
  };
}

/** Waits until a session of `db`'s database waits on a lock (the statement under test is held). */
export async function untilSomeoneWaitsOnALock(db: TestDatabase): Promise<void> {
  await waitFor(async () => {
    const [row] = await db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND datname = current_database()`;
    return row.n > 0 ? true : undefined;
  }, "a statement waiting on a lock");
}
