import assert from "node:assert/strict";
import { test } from "node:test";
import type { Identity } from "../../contracts/auth.ts";
import { createSessionCodec, tokenFingerprint } from "./session.ts";

const OLGA: Identity = { subject: "olga", name: "Olga", role: "operator", method: "oidc" };

test("a sealed session opens to who signed in, until it expires", async () => {
  let now = Date.parse("2026-12-01T08:00:00Z");
  const codec = createSessionCodec({ secret: "s".repeat(32), now: () => now });
  const value = await codec.seal(OLGA, 3_600_000);
  const { sid, ...rest } = (await codec.open(value)) ?? { sid: "" };
  assert.deepEqual(rest, {
    sub: "olga",
    name: "Olga",
    role: "operator",
    method: "oidc",
    exp: now + 3_600_000,
  });
  assert.match(sid, /^[\w-]{22}$/, "its own id, 128 random bits");
  assert.notEqual((await codec.open(await codec.seal(OLGA, 3_600_000)))?.sid, sid);
  now += 3_600_000;
  assert.equal(await codec.open(value), undefined, "expired at its end");
});

test("forged, unsigned, re-signed or malformed values open to nothing", async () => {
  const codec = createSessionCodec({ secret: "s".repeat(32) });
  const value = await codec.seal(OLGA, 3_600_000);
  const [body, mac] = value.split(".");
  // The same identity claiming admin, with the old signature.
  const json = JSON.parse(Buffer.from(body, "base64url").toString());
  const admin = Buffer.from(JSON.stringify({ ...json, role: "admin" })).toString("base64url");
  for (const forged of [
    `${admin}.${mac}`,
    body,
    `${body}.`,
    `${body}.${mac}.extra`,
    `${body}.${"A".repeat(mac.length)}`,
    "",
    "not a session",
    `${body}.${mac}`.repeat(200),
  ]) {
    assert.equal(await codec.open(forged), undefined, forged.slice(0, 40));
  }
  const other = createSessionCodec({ secret: "t".repeat(32) });
  assert.equal(await other.open(value), undefined, "another key's session");
  const noSecret = createSessionCodec({});
  assert.equal(await noSecret.open(value), undefined, "a restart without SESSION_SECRET");
});

test("a session opened with a token carries the token's name and fingerprint, not the token", async () => {
  const codec = createSessionCodec({ secret: "s".repeat(32) });
  const sha256 = "ab".repeat(32);
  const ana: Identity = { subject: "token:ana", name: "ana", role: "admin", method: "token" };
  const value = await codec.seal(ana, 3_600_000, { name: "ana", sha256 });
  const session = await codec.open(value);
  assert.equal(session?.token, "ana");
  assert.equal(session?.fingerprint, tokenFingerprint(sha256));
  assert.equal(tokenFingerprint(sha256), "abababababababab");
  assert.notEqual(tokenFingerprint("cd".repeat(32)), session?.fingerprint, "another token");
});
