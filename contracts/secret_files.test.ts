import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { backendConfigSchema, engineConfigSchema, parseConfig } from "./config.ts";
import { withSecretFiles } from "./secret_files.ts";

test("a secret given as NAME_FILE is read from the file, trimmed; the rest is left as it was", async () => {
  const dir = await mkdtemp(join(tmpdir(), "secret-files-"));
  try {
    const file = join(dir, "admin_token");
    await writeFile(file, "engine-admin-token-0123456789\n");
    const env = { ADMIN_TOKEN_FILE: file, APP_PORT: "9100" };
    const config = parseConfig(engineConfigSchema, withSecretFiles(env));
    assert.equal(config.ADMIN_TOKEN, "engine-admin-token-0123456789");
    assert.equal(config.APP_PORT, 9100);
    assert.equal(config.INGEST_TOKEN, undefined);
    assert.deepEqual(env, { ADMIN_TOKEN_FILE: file, APP_PORT: "9100" }, "the input is not changed");

    assert.throws(
      () => withSecretFiles({ ADMIN_TOKEN_FILE: file, ADMIN_TOKEN: "x".repeat(20) }),
      /set 'ADMIN_TOKEN' or 'ADMIN_TOKEN_FILE', not both/,
    );
    assert.throws(
      () => withSecretFiles({ INGEST_TOKEN_FILE: join(dir, "missing") }),
      /'INGEST_TOKEN_FILE' .*missing cannot be read/,
    );
    await writeFile(join(dir, "blank"), " \n");
    assert.throws(
      () => withSecretFiles({ ALERT_SIGNING_SECRET_FILE: join(dir, "blank") }),
      /'ALERT_SIGNING_SECRET_FILE' .*blank is empty/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the backend's own secrets are taken as NAME_FILE too", async () => {
  const dir = await mkdtemp(join(tmpdir(), "secret-files-"));
  try {
    const env: Record<string, string> = {};
    const values = {
      SESSION_SECRET: "s".repeat(40),
      OIDC_CLIENT_SECRET: "client-secret-from-a-mounted-file",
      CONSOLE_TOKEN: "console-token-0123456789",
    };
    for (const [name, value] of Object.entries(values)) {
      await writeFile(join(dir, name), `${value}\n`);
      env[`${name}_FILE`] = join(dir, name);
    }
    const config = parseConfig(backendConfigSchema, withSecretFiles(env));
    assert.equal(config.SESSION_SECRET, values.SESSION_SECRET);
    assert.equal(config.OIDC_CLIENT_SECRET, values.OIDC_CLIENT_SECRET);
    assert.equal(config.CONSOLE_TOKEN, values.CONSOLE_TOKEN);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
