// The real backend process started on an embedded database a newer release migrated (a rollback): it stops, naming the PGlite folder an operator restores, not the socket address it used for one start.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { freePort } from "../_test/free_port.ts";
import { runUntilExit } from "../_test/run_until_exit.ts";
import { openDatabase } from "./database.ts";
import { loadMigrations, migrate } from "./migrate.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "rollback-start-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("a backend on a PGlite folder a newer release migrated exits naming that folder", async () => {
  const data = join(dir, "backend");
  const db = await openDatabase({ pgliteDataDir: data });
  try {
    const newer = { version: 9001, name: "later", sql: "CREATE TABLE later_table (id int)" };
    await migrate(db.sql, [...(await loadMigrations()), newer]);
  } finally {
    await db.close();
  }
  const { code, output } = await runUntilExit("backend/main.ts", {
    NO_COLOR: "1",
    SIMULATOR_RATE_HZ: "0",
    HOST: "127.0.0.1",
    PORT: String(await freePort()),
    PGLITE_DATA_DIR: data,
  });
  assert.equal(code, 1, output);
  const line = output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .find((l) => l.msg === "database migration failed");
  assert.ok(line, output);
  assert.equal(line.database, `pglite:${data}`);
  assert.doesNotMatch(output, /postgres:\/\/postgres@127\.0\.0\.1/);
});
