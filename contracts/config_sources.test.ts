// Messages of the configuration that say which variable to change: URLs checked as URLs, secrets read from files named as such.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, engineConfigSchema, parseConfig } from "./config.ts";

test("DECISIONS_URL is checked as an http(s) URL, blank meaning NESTJS_URL", () => {
  for (const value of ["http://backend:30000000", "http://[", "localhost:3000", "ftp://x"]) {
    assert.throws(
      () => parseConfig(engineConfigSchema, { DECISIONS_URL: value }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.includes(`'DECISIONS_URL' must be an http(s) URL, got ${JSON.stringify(value)}`),
      value,
    );
  }
  assert.equal(parseConfig(engineConfigSchema, { DECISIONS_URL: "" }).DECISIONS_URL, undefined);
  assert.equal(
    parseConfig(engineConfigSchema, { DECISIONS_URL: "https://backend:3000/" }).DECISIONS_URL,
    "https://backend:3000",
  );
});

test("a secret read from NAME_FILE (withSecretFiles) is named with its file when refused", () => {
  assert.throws(
    () => parseConfig(engineConfigSchema, { ADMIN_TOKEN: "short", ADMIN_TOKEN_FILE: "/run/t" }),
    /'ADMIN_TOKEN' \(from 'ADMIN_TOKEN_FILE'\) must be at least 16 characters/,
  );
  // Set directly: no file named.
  assert.throws(
    () => parseConfig(engineConfigSchema, { ADMIN_TOKEN: "short" }),
    (e: unknown) => e instanceof ConfigError && !e.message.includes("_FILE"),
  );
  // DECISIONS_TOKEN wins over DECISIONS_TOKEN_FILE (both may be set): its own value is refused.
  assert.throws(
    () => parseConfig(engineConfigSchema, { DECISIONS_TOKEN: "short", DECISIONS_TOKEN_FILE: "/x" }),
    (e: unknown) => e instanceof ConfigError && !e.message.includes("(from"),
  );
});
