import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { spawnEngine } from "../_test/engine_process.ts";

/** The engine's output when started with `DECISIONS_TOKEN_FILE=path`; it must exit 1. */
async function refusedWith(path: string, env: Record<string, string> = {}): Promise<string> {
  const engine = spawnEngine("node", {
    DECISIONS_POLL_S: "30",
    DECISIONS_TOKEN_FILE: path,
    ...env,
  });
  assert.equal(await engine.exited, 1, engine.output());
  const output = engine.output();
  assert.doesNotMatch(output, /^\s+at /m, "one line, no stack trace");
  return output;
}

test("engine process exits 1 naming DECISIONS_TOKEN_FILE when the file is missing", async () => {
  const path = join(tmpdir(), `no-such-token-${crypto.randomUUID()}`);
  const output = await refusedWith(path);
  assert.match(output, /^engine: 'DECISIONS_TOKEN_FILE' \S+ cannot be read: ENOENT/m);
  // A scale-out worker reads it at the same point, before it connects to anything.
  const worker = await refusedWith(path, { ENGINE_ROLE: "worker", FRAME_BUS: "nats" });
  assert.match(worker, /^engine: 'DECISIONS_TOKEN_FILE' \S+ cannot be read: ENOENT/m);
});

test("engine process exits 1 naming DECISIONS_TOKEN_FILE when the file is empty", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "decisions-token-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "token");
  await writeFile(path, " \n");
  const output = await refusedWith(path);
  assert.ok(output.includes(`engine: 'DECISIONS_TOKEN_FILE' ${path} is empty`), output);
});
