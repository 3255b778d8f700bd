// Test helper: a service started under Node with only the given environment (and PATH, HOME), run until it exits, its output kept: for settings that must stop start-up.
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { NODE_TS } from "./spawn_service.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Both, in the order they came. */
  output: string;
}

/**
 * Runs `file` (e.g. `backend/main.ts`) as `npm run backend` does, from the repository root, with
 * only `env` (and PATH, HOME) set, so no setting of the test's own environment leaks in, and
 * resolves once it exits (killed after 60 s: it must not start).
 *
 * @example const { code, stderr } = await runUntilExit("backend/main.ts", { AUTH_MODE: "oidc" });
 */
export function runUntilExit(file: string, env: Record<string, string>): Promise<Exit> {
  return new Promise<Exit>((resolve, reject) => {
    const child = spawn(NODE_TS[0], [...NODE_TS.slice(1), file], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    let output = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      output += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
      output += d;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr, output }));
  });
}
