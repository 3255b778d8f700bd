// `npm start` and the ports it builds its URLs from: a PORT or APP_PORT no service could listen on is refused up front, naming it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL(".", import.meta.url));

for (const [name, value] of [
  ["PORT", "0"],
  ["PORT", "99999"],
  ["PORT", "abc"],
  ["APP_PORT", "99999"],
  ["APP_PORT", "0"],
  ["APP_PORT", "9000x"],
] as const) {
  test(`npm start with ${name}=${value} exits 1 with one line naming ${name}`, () => {
    const run = spawnSync(process.execPath, ["run_ts.mjs", "start.ts"], {
      cwd: ROOT,
      env: { ...process.env, [name]: value },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 1, `${run.stdout}\n${run.stderr}`);
    assert.equal(
      run.stderr,
      `start: '${name}' must be an integer 1..65535, got ${JSON.stringify(value)}\n`,
    );
    assert.doesNotMatch(run.stdout, /starting backend/, "nothing was started");
  });
}
