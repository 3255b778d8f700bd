// authConfigProblem and the addresses of AUTH_MODE=oidc: https, plain http only on this machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { authConfigProblem } from "./auth.ts";

const oidc = {
  AUTH_MODE: "oidc" as const,
  HOST: "0.0.0.0",
  OIDC_ISSUER: "https://id.example.com",
  OIDC_CLIENT_ID: "console",
  PUBLIC_URL: "https://console.example.com",
};

test("AUTH_MODE=oidc refuses an issuer or console address over http beyond this machine, naming it", () => {
  assert.equal(authConfigProblem(oidc), undefined);
  assert.match(
    authConfigProblem({ ...oidc, PUBLIC_URL: "http://console.example.com" }) ?? "",
    /^'PUBLIC_URL' must be https \(http only on a loopback address\), got http:\/\/console\.example\.com/,
  );
  assert.match(
    authConfigProblem({ ...oidc, OIDC_ISSUER: "http://id.example.com/realms/x" }) ?? "",
    /^'OIDC_ISSUER' must be https/,
  );
  // Both on this machine (a provider under test, a console reached as localhost): allowed.
  assert.equal(
    authConfigProblem({
      ...oidc,
      OIDC_ISSUER: "http://127.0.0.1:8080",
      PUBLIC_URL: "http://localhost:3000",
    }),
    undefined,
  );
});
