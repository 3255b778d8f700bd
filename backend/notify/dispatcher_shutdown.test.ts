// Stopping the dispatcher while its pass is held in the database: stop() keeps to its deadline (PGlite and PostgreSQL).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import {
  type HeldTransaction,
  holdTransaction,
  untilSomeoneWaitsOnALock,
} from "../_test/held_transaction.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createNotificationDispatcher } from "./notification_dispatcher.ts";
import { parseNotifyConfig } from "./notify_config.ts";

/**
 * Holds what every query of a pass needs: on PostgreSQL the outbox and incident tables, locked
 * by a second connection; on PGlite its one connection, in a transaction left open.
 */
async function holdThePass(db: TestDatabase): Promise<HeldTransaction> {
  if (db.kind === "postgres") {
    return await holdTransaction(
      db,
      (tx) => tx`LOCK TABLE notification_outbox, incident, incident_event IN ACCESS EXCLUSIVE MODE`,
    );
  }
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let holding!: () => void;
  const held = new Promise<void>((resolve) => {
    holding = resolve;
  });
  const transaction = db.sql.begin(async () => {
    holding();
    await released;
  });
  await held;
  let done: Promise<void> | undefined;
  return {
    release() {
      done ??= (async () => {
        release();
        await transaction;
      })();
      return done;
    },
  };
}

/** Resolves with "stopped" when `stop` settles, or "still waiting" after `ms`: the test's own bound. */
function within(stop: Promise<void>, ms: number): Promise<"stopped" | "still waiting"> {
  const bound = AbortSignal.timeout(ms);
  return Promise.race([
    stop.then(() => "stopped" as const),
    new Promise<"still waiting">((resolve) =>
      bound.addEventListener("abort", () => resolve("still waiting"), { once: true }),
    ),
  ]);
}

for (const target of testTargets()) {
  describe(`dispatcher shutdown on ${target.kind}`, () => {
    test("stop() returns at its deadline while the pass waits in the database, and says so", async () => {
      const db = await target.open();
      const lines: { level: string; msg: string }[] = [];
      const log = createLogger({ service: "backend", write: (l) => lines.push(JSON.parse(l)) });
      let passBegan!: () => void;
      const began = new Promise<void>((resolve) => {
        passBegan = resolve;
      });
      const notify = createNotificationDispatcher({
        database: db,
        config: parseNotifyConfig(
          JSON.stringify({
            routes: [{ name: "ops", webhook: { url: "http://127.0.0.1:9/hook" } }],
          }),
        ),
        log,
        // A pass reads the clock before its first query.
        now: () => {
          passBegan();
          return Date.now();
        },
      });
      const held = await holdThePass(db);
      try {
        notify.start();
        await began;
        if (db.kind === "postgres") await untilSomeoneWaitsOnALock(db);
        const deadline = AbortSignal.timeout(200);
        // The old stop() waited for the pass, so for as long as the database held it.
        assert.equal(await within(notify.stop(deadline), 20_000), "stopped");
        assert.ok(deadline.aborted, "it waited for the pass until its deadline");
        assert.deepEqual(
          lines.filter((l) => l.level === "warn").map((l) => l.msg),
          ["notification pass abandoned at the shutdown deadline"],
        );
      } finally {
        await held.release();
        // Without a deadline stop() waits for the abandoned pass, now free to end.
        await notify.stop();
        await db.dispose();
      }
    });
  });
}
