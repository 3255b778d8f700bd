// The real backend process with AUTH_MODE=oidc and a provider or console address browsers would reach over plain http: refused before the database is opened.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { freePort } from "../_test/free_port.ts";
import { NODE_TS } from "../_test/spawn_service.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs backend/main.ts with only `env` (and PATH, HOME) set until it exits (killed after 60 s). */
function backendExit(env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(NODE_TS[0], [...NODE_TS.slice(1), "backend/main.ts"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        NO_COLOR: "1",
        SIMULATOR_RATE_HZ: "0",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("backend start-up refuses OIDC addresses over plain http before opening the database", () => {
  for (const [name, issuer, publicUrl] of [
    ["PUBLIC_URL", "https://id.example.com", "http://console.example.com"],
    ["OIDC_ISSUER", "http://id.example.com", "https://console.example.com"],
  ] as const) {
    test(`${name} over http on a host that is not this machine: exit 1 naming ${name}, the database never tried`, async () => {
      // A port nobody listens on: reaching the database would mean retries, then ECONNREFUSED.
      const closed = await freePort();
      const { code, stdout, stderr } = await backendExit({
        HOST: "0.0.0.0",
        PORT: String(await freePort()),
        AUTH_MODE: "oidc",
        OIDC_ISSUER: issuer,
        OIDC_CLIENT_ID: "console",
        OIDC_CLIENT_SECRET: "s3cret",
        PUBLIC_URL: publicUrl,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/none`,
      });
      assert.equal(code, 1, `${stdout}\n${stderr}`);
      assert.match(
        stderr,
        new RegExp(`backend: .*'${name}' must be https \\(http only on a loopback address\\)`),
      );
      assert.doesNotMatch(`${stdout}\n${stderr}`, /ECONNREFUSED|database|\n\s+at /);
    });
  }
});
