import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import postgres from "postgres";
import { redactUrl } from "../../telemetry/redact.ts";
import { testTargets } from "./_test_databases.ts";
import { checkpointIfDue, openDatabase, parseTimestamptz } from "./database.ts";

/** A TCP server on a free port; `silent` takes connections and never answers, else none listen. */
async function fakeServer(t: TestContext, silent: boolean): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const stop = () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  };
  if (silent) t.after(stop);
  else stop();
  return `postgres://postgres@127.0.0.1:${port}/none`;
}

test("parseTimestamptz reads PostgreSQL's text form, years before 100 included", () => {
  const iso = (s: string) => parseTimestamptz(s).toISOString();
  assert.equal(iso("2026-11-24 09:00:00+00"), "2026-11-24T09:00:00.000Z");
  assert.equal(iso("2026-11-24 10:00:00.123456+01"), "2026-11-24T09:00:00.123Z");
  assert.equal(iso("2026-11-24 14:30:00+05:30"), "2026-11-24T09:00:00.000Z");
  assert.equal(iso("0050-01-01 00:00:00+00"), "0050-01-01T00:00:00.000Z");
  assert.ok(Number.isNaN(parseTimestamptz("infinity").getTime()));
});

test("redactUrl hides every form of a password in DATABASE_URL", () => {
  const cases: [string, string][] = [
    ["postgres://ana:s3cret@db:5432/x", "postgres://ana:***@db:5432/x"],
    ["postgres://:s3cret@db/x", "postgres://:***@db/x"],
    ["postgres://ana:p@ss@w0rd@db/x", "postgres://ana:***@db/x"],
    ["postgresql://ana@db/x", "postgresql://ana@db/x"],
    [
      "postgres://db/x?user=ana&password=s3cret&sslmode=require",
      "postgres://db/x?user=ana&password=***&sslmode=require",
    ],
    ["postgres://u:pw@h1:5432,h2:5432/x", "postgres://u:***@h1:5432,h2:5432/x"],
    ["postgres://db/x?note=a@b", "postgres://db/x?note=a@b"],
    ["nats://u:p@a:4222,nats://v:q@b:4222", "nats://u:***@a:4222,nats://v:***@b:4222"],
  ];
  for (const [url, shown] of cases) assert.equal(redactUrl(url), shown, url);
});

test("database ping that times out keeps the pool", async (t) => {
  const db = await openDatabase({ url: await fakeServer(t, true) });
  t.after(() => db.close(0));
  const client = db.sql;
  await assert.rejects(db.ping(AbortSignal.timeout(100)), { name: "TimeoutError" });
  assert.equal(db.sql, client, "a slow answer is no reason to end the pool's queries");
});

test("database ping that cannot connect recovers the client", async (t) => {
  const db = await openDatabase({ url: await fakeServer(t, false) });
  t.after(() => db.close(0));
  const client = db.sql;
  await assert.rejects(db.ping(AbortSignal.timeout(5000)), { code: "ECONNREFUSED" });
  assert.notEqual(db.sql, client, "a connection failure replaces the client");
});

for (const target of testTargets().filter((t) => t.kind === "postgres")) {
  test("database ping answers while every pooled connection waits on a lock", async (t) => {
    const db = await target.open({ migrate: false });
    const holder = postgres(process.env.DATABASE_URL as string, { max: 1, onnotice: () => {} });
    t.after(async () => {
      await holder.end();
      await db.dispose();
    });
    const key = 1 + Math.floor(Math.random() * 2 ** 30);
    await holder`SELECT pg_advisory_lock(${key})`;
    const client = db.sql;
    // The default pool of 10 connections, every one queued behind the held lock.
    const busy = Promise.all(
      Array.from({ length: 10 }, () => client`SELECT pg_advisory_xact_lock_shared(${key})`),
    );
    busy.catch(() => {});
    const deadline = Date.now() + 10_000;
    for (;;) {
      const [{ n }] = await holder`
        SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = ${key}`;
      if (n >= 10) break;
      assert.ok(Date.now() < deadline, `only ${n} of 10 queries waited for the lock`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await db.ping(AbortSignal.timeout(2000));
    assert.equal(db.sql, client, "the pool is the same");
    await holder`SELECT pg_advisory_unlock(${key})`;
    assert.equal((await busy).length, 10, "the pool's queries finished");
  });
}

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

test("a persisted PGlite makes a checkpoint once its write-ahead log since the last one passes the bound", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "pglite-checkpoint-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const db = await openDatabase({
    pgliteDataDir: join(dir, "data"),
    checkpointCheckMs: 50,
    checkpointWalBytes: 2 * 2 ** 20,
  });
  t.after(() => db.close());
  const behind = async () => {
    const [row] = await db.sql<{ behind: number }[]>`
      SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::float8 AS behind
      FROM pg_control_checkpoint()`;
    return row.behind;
  };
  await db.sql`CREATE TABLE wal_filler (g int, x text)`;
  // About 3 MB of rows a statement (960 bytes each, inline and uncompressed): past the bound.
  let wrote = 0;
  for (let i = 0; i < 2; i++) {
    await db.sql`INSERT INTO wal_filler SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 3000) g`;
    wrote = Math.max(wrote, await behind());
  }
  assert.ok(wrote > 2 * 2 ** 20, `the rows wrote ${wrote} bytes of log`);
  // The schedule checkpoints: the log since the last checkpoint falls back under the bound.
  const deadline = AbortSignal.timeout(30_000);
  while ((await behind()) > 2 * 2 ** 20) {
    if (deadline.aborted) throw new Error(`no checkpoint: ${await behind()} bytes behind`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Under the bound, nothing to do.
  assert.equal((await checkpointIfDue(db.sql)).checkpointed, false);
});
