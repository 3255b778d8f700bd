// compose's `tokens` service, run as a process: the tokens it makes once per volume, and nothing new on a second run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { NODE_SERVICE_ARGS } from "../../launch.ts";

const run = (dir: string) =>
  spawnSync(process.execPath, [...NODE_SERVICE_ARGS, "backend/auth/first_tokens.ts"], {
    env: { ...process.env, TOKENS_DIR: dir },
    encoding: "utf8",
  });

test("the tokens service writes an admin token's hash, the engine's viewer token, its ADMIN_TOKEN, INGEST_TOKEN and ALERT_SIGNING_SECRET, once", async () => {
  const dir = await mkdtemp(join(tmpdir(), "first-tokens-"));
  try {
    const first = run(dir);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /Sign in at/);
    const adminToken = (await readFile(join(dir, "engine_admin_token"), "utf8")).trim();
    assert.match(adminToken, /^[A-Za-z0-9_-]{43}$/);
    const people = JSON.parse(await readFile(join(dir, "tokens.json"), "utf8")) as {
      name: string;
    }[];
    assert.deepEqual(people.map((p) => p.name).sort(), ["admin", "engine"]);
    assert.ok(
      !JSON.stringify(people).includes(adminToken),
      "the engine's ADMIN_TOKEN is no person's",
    );

    const second = run(dir);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /already holds an admin token/);
    assert.equal((await readFile(join(dir, "engine_admin_token"), "utf8")).trim(), adminToken);
    // The engine's INGEST_TOKEN and ALERT_SIGNING_SECRET too: each its own, kept across runs,
    // readable by their owner only.
    const secrets = new Set([adminToken]);
    for (const name of ["ingest_token", "alert_signing_secret"]) {
      const value = (await readFile(join(dir, name), "utf8")).trim();
      assert.match(value, /^[A-Za-z0-9_-]{43}$/, name);
      secrets.add(value);
      assert.equal((await stat(join(dir, name))).mode & 0o777, 0o600, name);
    }
    assert.equal(secrets.size, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
