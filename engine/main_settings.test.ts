// The real engine process and settings that name a place or a token: a bad one stops start-up with one line naming the variable, never a stack trace.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort } from "../backend/_test/free_port.ts";
import { runUntilExit } from "../backend/_test/run_until_exit.ts";

const ROOT = new URL("../", import.meta.url).pathname;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "engine-settings-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs engine/main.ts with only `env` (and PATH, HOME) set until it exits; `out`: its output. */
async function engineExit(env: Record<string, string>) {
  const { code, output } = await runUntilExit("engine/main.ts", {
    APP_HOST: "127.0.0.1",
    APP_PORT: String(await freePort()),
    DEFAULT_DEVICE: "cpu",
    MODEL_DIR: join(ROOT, "models"),
    DATA_DIR: join(dir, "data"),
    ...env,
  });
  return { code, out: output };
}

function assertOneLine(out: string, pattern: RegExp) {
  assert.match(out, pattern);
  assert.doesNotMatch(out, /\n\s+at /, `no stack trace:\n${out}`);
}

describe("engine start-up names the variable behind a bad setting", () => {
  test("DECISIONS_URL with a port out of range or no host: one line naming it", async () => {
    for (const value of ["http://backend:30000000", "http://[", "localhost:3000"]) {
      const { code, out } = await engineExit({ DECISIONS_URL: value, DECISIONS_POLL_S: "30" });
      assert.equal(code, 1, out);
      assertOneLine(out, /engine: invalid configuration: 'DECISIONS_URL' must be an http\(s\) URL/);
    }
  });

  test("MODEL_SEED_DIR that does not exist: one line naming it", async () => {
    const { code, out } = await engineExit({
      MODEL_SEED_DIR: "/nonexistent-seed",
      MODEL_DIR: join(dir, "registry"),
    });
    assert.equal(code, 1, out);
    assertOneLine(out, /engine: 'MODEL_SEED_DIR' \/nonexistent-seed/);
  });

  test("DATA_DIR that is a file: one line naming it", async () => {
    const file = join(dir, "a-file");
    await writeFile(file, "");
    for (const dataDir of [file, join(file, "engine")]) {
      const { code, out } = await engineExit({ DATA_DIR: dataDir });
      assert.equal(code, 1, out);
      assertOneLine(out, /engine: 'DATA_DIR' \S+ /);
    }
  });

  test("DECISIONS_TOKEN_FILE holding a token too short for DECISIONS_TOKEN: refused, naming it", async () => {
    const file = join(dir, "short-token");
    await writeFile(file, "short\n");
    const { code, out } = await engineExit({
      DECISIONS_TOKEN_FILE: file,
      DECISIONS_POLL_S: "30",
    });
    assert.equal(code, 1, out);
    assertOneLine(out, /engine: 'DECISIONS_TOKEN_FILE' \S+ must hold at least 16 characters/);
  });

  test("ALERT_SIGNING_SECRET that cannot sign (whsec_ and not base64): refused at start, naming it", async () => {
    const { code, out } = await engineExit({ ALERT_SIGNING_SECRET: "whsec_not base64 at all!!" });
    assert.equal(code, 1, out);
    assertOneLine(out, /'ALERT_SIGNING_SECRET' must be whsec_ followed by base64/);
  });

  test("ADMIN_TOKEN_FILE holding a token too short: the message says it came from the file", async () => {
    const file = join(dir, "short-admin");
    await writeFile(file, "short\n");
    const { code, out } = await engineExit({ ADMIN_TOKEN_FILE: file });
    assert.equal(code, 1, out);
    assertOneLine(out, /'ADMIN_TOKEN' \(from 'ADMIN_TOKEN_FILE'\) must be at least 16 characters/);
  });
});
