// Messages of the configuration that say which variable to change: URLs checked as URLs, secrets read from files named as such.
import assert from "node:assert/strict";
import { test } from "node:test";
import { backendConfigSchema, ConfigError, engineConfigSchema, parseConfig } from "./config.ts";

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

test("a service URL holding user:password@ is refused, naming the variable and never quoting it", () => {
  const cases = [
    [engineConfigSchema, "NESTJS_URL"],
    [engineConfigSchema, "DECISIONS_URL"],
    [backendConfigSchema, "ENGINE_URL"],
  ] as const;
  for (const [schema, name] of cases) {
    for (const value of [
      "http://admin:s3cretpw@127.0.0.1:9300",
      "https://alerts@backend:3000",
      // No scheme, or another one: refused as no http(s) URL too, and still not quoted.
      "admin:s3cretpw@engine:9000",
      "ftp://alerts:s3cretpw@host",
      "htp://admin:s3cretpw@engine:9000",
    ]) {
      assert.throws(
        () => parseConfig(schema, { [name]: value }),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.message.includes(`'${name}' must not hold a user or password`) &&
          !e.message.includes("s3cretpw") &&
          !e.message.includes("alerts@"),
        `${name}=${value}`,
      );
    }
  }
  assert.equal(
    parseConfig(engineConfigSchema, { NESTJS_URL: "http://backend:3000/" }).NESTJS_URL,
    "http://backend:3000",
  );
});
