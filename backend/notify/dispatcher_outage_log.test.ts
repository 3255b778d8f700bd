// The dispatcher through a PostgreSQL outage: one warning when its passes start failing, one line with how long when they work again.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { type PrivatePostgres, startPrivatePostgres } from "../_test/private_postgres.ts";
import { waitFor } from "../_test/spawn_service.ts";
import { type Database, openDatabase } from "../db/database.ts";
import { migrate } from "../db/migrate.ts";
import { createNotificationDispatcher } from "./notification_dispatcher.ts";
import { parseNotifyConfig } from "./notify_config.ts";

// A private server, because stopping the shared one would disturb every other test.
let pg: PrivatePostgres;
let db: Database;
before(async () => {
  pg = await startPrivatePostgres();
  db = await openDatabase({ url: pg.url, max: 2 });
  await migrate(db.sql);
});
after(async () => {
  await db?.close(1);
  await pg?.dispose();
});

test("passes failing through an outage log one warning, and one info line with failing_ms when they work again", {
  timeout: 120_000,
}, async () => {
  const lines: { level: string; msg: string; failing_ms?: number; error?: string }[] = [];
  const log = createLogger({ service: "backend", write: (l) => lines.push(JSON.parse(l)) });
  // Every pass reads the clock before its first query: the count of passes so far.
  let clockReads = 0;
  const notify = createNotificationDispatcher({
    database: db,
    // No routes: the passes still run (events are marked planned).
    config: parseNotifyConfig(JSON.stringify({ routes: [] })),
    log,
    pollMs: 10,
    // Superseded incidents are looked for at every pass, so that its query fails at each too.
    supersedeAfterMs: 40,
    now: () => {
      clockReads++;
      return Date.now();
    },
  });
  const atLevel = (level: string) => lines.filter((l) => l.level === level);
  notify.start();
  try {
    await waitFor(async () => (clockReads >= 3 ? true : undefined), "passes before the outage");
    assert.deepEqual(atLevel("warn"), []);

    await pg.stop();
    await waitFor(async () => (atLevel("warn").length > 0 ? true : undefined), "a failed pass");
    // Many more passes, each failing, while the server stays down.
    const from = clockReads;
    await waitFor(async () => (clockReads >= from + 20 ? true : undefined), "20 more passes");
    assert.deepEqual(
      atLevel("warn").map((l) => l.msg),
      ["notification pass failed; retried each pass until it works again"],
    );
    assert.deepEqual(atLevel("info"), []);

    await pg.start();
    const back = await waitFor(
      async () => atLevel("info").find((l) => l.msg === "notification passes work again"),
      "the line that passes work again",
    );
    assert.equal(typeof back.failing_ms, "number");
    assert.ok((back.failing_ms as number) >= 0);
    // Passes after that log nothing more.
    const upTo = clockReads;
    await waitFor(async () => (clockReads >= upTo + 5 ? true : undefined), "5 more passes");
    assert.equal(
      atLevel("warn").length,
      1,
      JSON.stringify(lines.filter((l) => l.level !== "debug")),
    );
    assert.equal(atLevel("info").length, 1);
    assert.deepEqual(atLevel("error"), []);
  } finally {
    await notify.stop();
  }
});
