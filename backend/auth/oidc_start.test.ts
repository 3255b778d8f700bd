// The real backend process with AUTH_MODE=oidc and a provider or console address browsers would reach over plain http: refused before the database is opened.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { freePort } from "../_test/free_port.ts";
import { runUntilExit } from "../_test/run_until_exit.ts";

/** Runs backend/main.ts with only `env` (and PATH, HOME) set until it exits. */
const backendExit = (env: Record<string, string>) =>
  runUntilExit("backend/main.ts", { NO_COLOR: "1", SIMULATOR_RATE_HZ: "0", ...env });

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
