// The dispatcher through a PostgreSQL outage: one warning when its passes start failing, one more when they fail differently (naming the database error) or keep failing for long, one line with how long when they work again.
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

/** `pg.url` as `user`. */
function urlAs(user: string): string {
  const own = new URL(pg.url);
  own.username = user;
  return own.toString();
}

/** A role that may use every table of the schema, and a database handle logged in as it. */
async function grantedRole(name: string): Promise<Database> {
  await db.sql.unsafe(`CREATE ROLE ${name} LOGIN`);
  await db.sql.unsafe(
    `GRANT ALL ON ALL TABLES IN SCHEMA public TO ${name}; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${name}`,
  );
  return openDatabase({ url: urlAs(name), max: 2 });
}

test("a different failure while the passes fail (the role may log in again, but lost its grants) is warned of too, naming it", {
  timeout: 120_000,
}, async () => {
  const role = "dispatcher_spell";
  const own = await grantedRole(role);
  const lines: {
    level: string;
    msg: string;
    failing_ms?: number;
    error?: string;
    cause?: string;
  }[] = [];
  const log = createLogger({ service: "backend", write: (l) => lines.push(JSON.parse(l)) });
  let clockReads = 0;
  const notify = createNotificationDispatcher({
    database: own,
    config: parseNotifyConfig(JSON.stringify({ routes: [] })),
    log,
    pollMs: 10,
    supersedeAfterMs: 40,
    now: () => {
      clockReads++;
      return Date.now();
    },
  });
  const warnings = () => lines.filter((l) => l.level === "warn");
  const shown = () => JSON.stringify(lines.filter((l) => l.level !== "debug"));
  notify.start();
  try {
    await waitFor(async () => (clockReads >= 3 ? true : undefined), "passes before the outage");
    assert.deepEqual(warnings(), []);

    // The role may no longer log in (28000): its connections are refused.
    await db.sql.unsafe(`ALTER ROLE ${role} NOLOGIN`);
    await db.sql.unsafe(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${role}'`,
    );
    await waitFor(async () => (warnings().length > 0 ? true : undefined), "a failed pass");
    const refusedFrom = clockReads;
    await waitFor(
      async () => (clockReads >= refusedFrom + 20 ? true : undefined),
      "20 more passes, refused",
    );

    // It may log in again, but its grants are gone (42501): every pass still fails, otherwise.
    await db.sql.begin(async (tx) => {
      await tx.unsafe(`ALTER ROLE ${role} LOGIN`);
      await tx.unsafe(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}`);
    });
    const denied = await waitFor(
      async () => warnings().find((l) => /permission denied/.test(l.error ?? "")),
      "a warning naming the new failure",
      30_000,
    ).catch((error: Error) => assert.fail(`${error.message}: ${shown()}`));
    assert.equal(
      denied.msg,
      "notification passes fail differently now; retried each pass until it works again",
    );
    assert.equal(typeof denied.failing_ms, "number");
    assert.deepEqual(
      lines.filter((l) => l.level === "info"),
      [],
      shown(),
    );
    // The refusal was warned of with the database's own words, before it.
    const refused = warnings().find((l) => /not permitted to log in/.test(l.cause ?? ""));
    assert.ok(refused, shown());
    assert.ok(warnings().indexOf(refused) < warnings().indexOf(denied), shown());

    // The same failure, pass after pass, is warned of once.
    const count = warnings().length;
    const from = clockReads;
    await waitFor(async () => (clockReads >= from + 20 ? true : undefined), "20 more passes");
    assert.equal(warnings().length, count, shown());

    await db.sql.unsafe(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
    await waitFor(
      async () =>
        lines.find((l) => l.level === "info" && l.msg === "notification passes work again"),
      "the line that passes work again",
    );
  } finally {
    await notify.stop();
    await own.close(1);
    await db.sql.unsafe(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  }
});

test("a failure that persists is warned of again every failureRewarnMs, with how long it has failed", {
  timeout: 120_000,
}, async () => {
  const role = "dispatcher_persisting";
  const own = await grantedRole(role);
  await db.sql.unsafe(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}`);
  const lines: { level: string; msg: string; failing_ms?: number; error?: string }[] = [];
  const log = createLogger({ service: "backend", write: (l) => lines.push(JSON.parse(l)) });
  const notify = createNotificationDispatcher({
    database: own,
    config: parseNotifyConfig(JSON.stringify({ routes: [] })),
    log,
    pollMs: 10,
    failureRewarnMs: 300,
  });
  notify.start();
  try {
    const again = await waitFor(
      async () => lines.find((l) => l.level === "warn" && /still fail/.test(l.msg)),
      "the failure warned of again",
      30_000,
    ).catch((error: Error) => assert.fail(`${error.message}: ${JSON.stringify(lines.slice(-5))}`));
    assert.equal(
      again.msg,
      "notification passes still fail; retried each pass until it works again",
    );
    assert.match(again.error ?? "", /permission denied/);
    assert.ok((again.failing_ms as number) >= 300, JSON.stringify(again));
    const warned = lines.filter((l) => l.level === "warn");
    assert.equal(warned[0].msg, "notification pass failed; retried each pass until it works again");
  } finally {
    await notify.stop();
    await own.close(1);
    await db.sql.unsafe(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  }
});
