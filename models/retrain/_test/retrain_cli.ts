// Test helper: `npm run retrain` as a child process, as a person runs it, and the report it wrote.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { RetrainReport } from "../report.ts";
import { reportPath } from "../retrain.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

/**
 * Runs `models/retrain/cli.ts --model name --events 16` with `env` and `RETRAIN_PROMOTE=auto`,
 * asserts it exits 0, and returns its output with the candidate's report.
 */
export async function runRetrainCli(
  name: string,
  registry: string,
  env: Record<string, string>,
): Promise<{ out: string; version: string; report: RetrainReport }> {
  const cli = spawn(
    process.execPath,
    ["--import", "tsx", "models/retrain/cli.ts", "--model", name, "--events", "16"],
    {
      cwd: ROOT,
      env: { ...process.env, ...env, RETRAIN_PROMOTE: "auto" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  cli.stdout.on("data", (c) => {
    out += c;
  });
  cli.stderr.on("data", (c) => {
    out += c;
  });
  const code = await new Promise((resolve) => cli.on("exit", resolve));
  assert.equal(code, 0, out);
  const version = /candidate (\S+) vs active/.exec(out)?.[1];
  assert.ok(version, out);
  const report = JSON.parse(
    await readFile(reportPath(registry, name, version), "utf8"),
  ) as RetrainReport;
  return { out, version, report };
}
