import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  authConfigProblem,
  hasRole,
  isLoopbackHost,
  parseApiTokens,
  parseRoleMap,
  roleFromClaim,
  tokenDigest,
} from "./auth.ts";
import { backendConfigSchema, ConfigError, parseConfig } from "./config.ts";

describe("roles", () => {
  test("each role includes the ones before it and nothing after", () => {
    assert.ok(hasRole("admin", "operator") && hasRole("operator", "viewer"));
    assert.ok(hasRole("viewer", "viewer"));
    assert.ok(!hasRole("viewer", "operator") && !hasRole("operator", "admin"));
  });

  test("a role claim maps to the strongest role it grants; absent or unknown grants none", () => {
    const map = parseRoleMap("plant-ops=operator, plant-admins=admin,readers=viewer");
    assert.equal(roleFromClaim(["readers", "plant-ops"], map), "operator");
    assert.equal(roleFromClaim(["plant-admins", "readers"], map), "admin");
    assert.equal(roleFromClaim("readers", map), "viewer");
    assert.equal(roleFromClaim(["contractors"], map), undefined);
    assert.equal(roleFromClaim(undefined, map), undefined);
    assert.equal(roleFromClaim({ admin: true }, map), undefined);
    assert.equal(roleFromClaim([7, null], map), undefined);
  });

  test("a role map entry without a known role is refused, naming it", () => {
    assert.throws(() => parseRoleMap("ops=superuser"), /'ops=superuser' must be claim-value=role/);
    assert.throws(() => parseRoleMap("=admin"), /must be claim-value=role/);
    assert.throws(() => parseRoleMap("admin"), /must be claim-value=role/);
  });
});

describe("the API tokens file", () => {
  const sha = "a".repeat(64);

  test("a good file parses, an expiry is optional", () => {
    const tokens = parseApiTokens(
      JSON.stringify([
        { name: "ci", role: "viewer", sha256: sha },
        { name: "ana@plant", role: "operator", sha256: sha, expires_at: "2027-01-01T00:00:00Z" },
      ]),
    );
    assert.equal(tokens.length, 2);
  });

  test("a bad entry is refused with its index and field", () => {
    assert.throws(
      () => parseApiTokens(JSON.stringify([{ name: "ci", role: "root", sha256: sha }])),
      /entry 0\.role: must be one of viewer\|operator\|admin/,
    );
    assert.throws(
      () => parseApiTokens(JSON.stringify([{ name: "ci", role: "viewer", sha256: "abc" }])),
      /entry 0\.sha256/,
    );
    assert.throws(
      () =>
        parseApiTokens(JSON.stringify([{ name: "ci", role: "viewer", sha256: sha, token: "x" }])),
      /entry 0\.token/,
    );
    assert.throws(() => parseApiTokens("{"), /not JSON/);
    assert.throws(
      () =>
        parseApiTokens(
          JSON.stringify([
            { name: "ci", role: "viewer", sha256: sha },
            { name: "ci", role: "admin", sha256: sha },
          ]),
        ),
      /unique/,
    );
  });

  test("the digest is the hex SHA-256 of the token", async () => {
    assert.equal(
      await tokenDigest("abc"),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });
});

describe("AUTH_MODE=none only on a loopback address", () => {
  test("loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"])
      assert.ok(isLoopbackHost(h), h);
    for (const h of ["0.0.0.0", "::", "10.0.0.5", "backend", "128.0.0.1"])
      assert.ok(!isLoopbackHost(h), h);
  });

  test("none on a public address is refused and says which variables to set", () => {
    const config = parseConfig(backendConfigSchema, { HOST: "0.0.0.0" });
    const problem = authConfigProblem(config) ?? "";
    assert.match(problem, /HOST is 0\.0\.0\.0/);
    assert.match(problem, /AUTH_MODE=token with API_TOKENS_FILE/);
    assert.match(problem, /AUTH_MODE=oidc with OIDC_ISSUER/);
    assert.equal(authConfigProblem(parseConfig(backendConfigSchema, {})), undefined);
  });

  test("token and oidc modes name what they lack", () => {
    const token = parseConfig(backendConfigSchema, { HOST: "0.0.0.0", AUTH_MODE: "token" });
    assert.match(authConfigProblem(token) ?? "", /needs API_TOKENS_FILE/);
    const oidc = parseConfig(backendConfigSchema, {
      AUTH_MODE: "oidc",
      OIDC_ISSUER: "https://id.example.com",
    });
    assert.match(authConfigProblem(oidc) ?? "", /needs OIDC_CLIENT_ID, PUBLIC_URL/);
  });

  test("a bad mode or role map stops the configuration with its name", () => {
    assert.throws(
      () => parseConfig(backendConfigSchema, { AUTH_MODE: "ldap" }),
      (e: unknown) => e instanceof ConfigError && /AUTH_MODE/.test(e.message),
    );
    assert.throws(
      () => parseConfig(backendConfigSchema, { OIDC_ROLE_MAP: "x=root" }),
      (e: unknown) => e instanceof ConfigError && /OIDC_ROLE_MAP/.test(e.message),
    );
  });
});
