// OIDC sign-in over real HTTP against a real provider (oidc-provider): the flow, and each refusal with nothing set.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import { Hono } from "hono";
import { parseRoleMap } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { freePort } from "../_test/free_port.ts";
import {
  type CookieJar,
  createCookieJar,
  signInAtProvider,
  startOidcProvider,
  type TestProvider,
} from "../_test/oidc_provider.ts";
import { createAuditRepository } from "../audit/audit_repository.ts";
import { testTargets } from "../db/_test_databases.ts";
import { createAuth } from "./auth.ts";
import { createOidc, FLOW_COOKIE, nameOf, type OidcOptions } from "./oidc.ts";
import { SESSION_COOKIE } from "./session.ts";

const SECRET = "a-session-secret-of-at-least-32-characters";
let server: ServerType;
let base: string;
let callbackUrl: string;
let op: TestProvider;
/** A second provider: its answers must not be taken for the first one's. */
let otherOp: TestProvider;
/** The app the server answers with; each test builds its own (its own failure counts). */
let current: Hono;

before(async () => {
  server = await new Promise<ServerType>((resolve) => {
    const s = serve(
      { fetch: (req, env) => current.fetch(req, env), port: 0, hostname: "127.0.0.1" },
      () => resolve(s),
    );
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  callbackUrl = `${base}/auth/callback`;
  [op, otherOp] = await Promise.all([
    startOidcProvider({ redirectUri: callbackUrl, postLogoutRedirectUri: `${base}/signin` }),
    startOidcProvider({ redirectUri: callbackUrl }),
  ]);
});

after(async () => {
  await Promise.all([op?.stop(), otherOp?.stop()]);
  server?.close();
});

/** Serves a fresh app: the real createAuth in `oidc` mode with the sign-in routes at /auth. */
function useApp(overrides: Partial<OidcOptions> = {}, now?: () => number) {
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    service: "test",
    level: "info",
    write: (l) => logs.push(JSON.parse(l)),
  });
  const auth = createAuth({ mode: "oidc", sessionSecret: SECRET, now, log });
  const oidc = createOidc({
    auth,
    issuer: op.issuer,
    clientId: op.clientId,
    clientSecret: op.clientSecret,
    publicUrl: base,
    roleClaim: "roles",
    roleMap: parseRoleMap("viewer=viewer,operator=operator,admin=admin"),
    secret: SECRET,
    log,
    now,
    ...overrides,
  });
  const app = new Hono();
  app.use(auth.middleware);
  app.route("/auth", oidc.routes);
  app.get("/api/v1/whoami", (c) => c.json(auth.identity(c)));
  app.onError((error, c) =>
    error instanceof HttpError
      ? c.json(error.body, error.status as 400, error.headers)
      : c.json({ error: "internal_error", message: String(error) }, 500),
  );
  current = app;
  return { oidc, logs };
}

/** `GET /auth/login` in `jar`'s browser: the provider address it redirects to. */
async function startLogin(jar: CookieJar, next = "/api/v1/whoami"): Promise<URL> {
  const res = await fetch(`${base}/auth/login?next=${encodeURIComponent(next)}`, {
    redirect: "manual",
    headers: { cookie: jar.header(base) },
  });
  assert.equal(res.status, 302, await res.clone().text());
  jar.store(base, res);
  return new URL(res.headers.get("location") as string);
}

/** Delivers the provider's answer to the backend in `jar`'s browser. */
async function deliver(jar: CookieJar, url: URL, accept = "application/json"): Promise<Response> {
  const res = await fetch(url, {
    redirect: "manual",
    headers: { cookie: jar.header(base), accept },
  });
  jar.store(base, res);
  return res;
}

/** A whole sign-in as `login`; the callback's response. */
async function signIn(login: string, jar = createCookieJar(), next?: string): Promise<Response> {
  const at = await startLogin(jar, next);
  return deliver(jar, await signInAtProvider(at.href, login, callbackUrl, jar));
}

async function assertRefused(res: Response, status: number, error: string, message?: RegExp) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const body = await res.json();
  assert.equal(body.error, error);
  if (message) assert.match(body.message, message);
  const cookies = res.headers.getSetCookie();
  assert.ok(!cookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)), `no session: ${cookies}`);
}

test("oidc sign-in sends the browser to the provider with PKCE S256, state and nonce in a flow cookie", async () => {
  useApp();
  const jar = createCookieJar();
  const at = await startLogin(jar);
  assert.equal(at.origin, op.issuer);
  const q = at.searchParams;
  assert.equal(q.get("redirect_uri"), callbackUrl);
  assert.equal(q.get("client_id"), "console");
  assert.equal(q.get("response_type"), "code");
  assert.equal(q.get("code_challenge_method"), "S256");
  assert.match(q.get("code_challenge") ?? "", /^[\w-]{43}$/);
  assert.deepEqual(q.get("scope")?.split(" "), ["openid", "profile", "email", "roles"]);
  assert.ok(q.get("state") && q.get("nonce"));
  assert.ok(jar.get(base, FLOW_COOKIE));
  const res = await fetch(`${base}/auth/login`, { redirect: "manual" });
  const flow = res.headers.getSetCookie().find((c) => c.startsWith(`${FLOW_COOKIE}=`)) ?? "";
  for (const attribute of ["Max-Age=600", "Path=/auth", "HttpOnly", "SameSite=Lax"]) {
    assert.ok(flow.split("; ").includes(attribute), `${attribute} in ${flow}`);
  }
});

test("oidc sign-in as each role starts an HttpOnly SameSite=Lax session and lands on next", async () => {
  useApp();
  for (const [login, role, name] of [
    ["olga", "operator", "Olga Operator"],
    ["alice", "admin", "Alice Admin"],
    ["victor", "viewer", "Victor Viewer"],
  ]) {
    const jar = createCookieJar();
    const res = await signIn(login, jar);
    assert.equal(res.status, 303, await res.text());
    assert.equal(res.headers.get("location"), "/api/v1/whoami");
    const session = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    assert.match(session ?? "", /; HttpOnly/);
    assert.match(session ?? "", /; SameSite=Lax/);
    assert.match(session ?? "", /; Max-Age=\d+/);
    assert.equal(jar.get(base, FLOW_COOKIE), undefined, "flow cookie cleared");
    const me = await fetch(`${base}/api/v1/whoami`, { headers: { cookie: jar.header(base) } });
    assert.equal(me.status, 200);
    assert.deepEqual(await me.json(), { subject: login, name, role, method: "oidc" });
  }
});

test("oidc sign-in is recorded in the audit trail, with who signed in and how", async () => {
  const db = await testTargets()[0].open();
  try {
    const audit = createAuditRepository(db);
    useApp({ audit });
    const res = await signIn("olga");
    assert.equal(res.status, 303, await res.text());
    const rows = await db.sql`
      SELECT action, target, actor_subject, actor_name, actor_method, actor_role FROM audit_event`;
    assert.deepEqual(
      rows.map((r) => ({ ...r })),
      [
        {
          action: "session.signin",
          target: "session:olga",
          actor_subject: "olga",
          actor_name: "Olga Operator",
          actor_method: "oidc",
          actor_role: "operator",
        },
      ],
    );
  } finally {
    await db.dispose();
  }
});

test("oidc sign-in the audit cannot record answers an error and starts no session", async () => {
  const db = await testTargets()[0].open();
  try {
    useApp({ audit: createAuditRepository(db) });
    // The audit table out of reach, as when the database fails the insert.
    await db.sql`ALTER TABLE audit_event RENAME TO audit_event_away`;
    const jar = createCookieJar();
    let res: Response;
    try {
      res = await signIn("olga", jar);
    } finally {
      await db.sql`ALTER TABLE audit_event_away RENAME TO audit_event`;
    }
    await assertRefused(res, 500, "internal_error");
    assert.equal(jar.get(base, SESSION_COOKIE), undefined);
    const me = await fetch(`${base}/api/v1/whoami`, { headers: { cookie: jar.header(base) } });
    assert.equal(me.status, 401, "this browser is not signed in");
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM audit_event`;
    assert.equal(n, 0);
  } finally {
    await db.dispose();
  }
});

test("oidc callback refuses a provider answer delivered without this browser's flow cookie (login CSRF)", async () => {
  const { logs } = useApp();
  const attacker = createCookieJar();
  const answer = await signInAtProvider(
    (await startLogin(attacker)).href,
    "victor",
    callbackUrl,
    attacker,
  );
  await assertRefused(
    await deliver(createCookieJar(), answer),
    401,
    "signin_failed",
    /not started in this browser/,
  );
  assert.ok(logs.some((l) => l.msg === "sign-in refused" && l.how === "oidc: no flow cookie"));
});

test("oidc refusal pages carry the console's headers: no framing, no sniffing, no caching", async () => {
  useApp();
  const page = await fetch(`${base}/auth/callback?state=x&code=y`, {
    redirect: "manual",
    headers: { accept: "text/html" },
  });
  assert.equal(page.status, 401);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await page.text(), /<h1>Sign-in failed<\/h1>/);
  assert.match(page.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  assert.equal(page.headers.get("cache-control"), "no-store");
  // The callback's address holds the code: never in the next page's Referer.
  assert.equal(page.headers.get("referrer-policy"), "no-referrer");
});

test("oidc callback refuses an answer whose state belongs to another sign-in", async () => {
  useApp();
  const attacker = createCookieJar();
  const answer = await signInAtProvider(
    (await startLogin(attacker)).href,
    "victor",
    callbackUrl,
    attacker,
  );
  const victim = createCookieJar();
  await startLogin(victim);
  await assertRefused(
    await deliver(victim, answer),
    401,
    "signin_failed",
    /belongs to another sign-in/,
  );
  assert.equal(victim.get(base, FLOW_COOKIE), undefined, "the victim's flow is spent");
});

test("oidc callback refuses a forged or expired flow cookie", async () => {
  let clock = Date.now();
  useApp({}, () => clock);
  const forged = createCookieJar();
  const answer = await signInAtProvider(
    (await startLogin(forged)).href,
    "alice",
    callbackUrl,
    forged,
  );
  const value = forged.get(base, FLOW_COOKIE) as string;
  forged.set(base, FLOW_COOKIE, `${value.slice(0, -2)}${value.endsWith("AA") ? "BB" : "AA"}`);
  await assertRefused(await deliver(forged, answer), 401, "signin_failed");

  const slow = createCookieJar();
  const late = await signInAtProvider((await startLogin(slow)).href, "alice", callbackUrl, slow);
  clock += 11 * 60_000;
  await assertRefused(await deliver(slow, late), 401, "signin_failed");
});

test("oidc callback refuses an answer from another provider (issuer mismatch)", async () => {
  useApp();
  const jar = createCookieJar();
  const at = await startLogin(jar);
  // The mix-up: same request, sent to another issuer that knows a client of the same name.
  const elsewhere = new URL(at.pathname + at.search, otherOp.issuer);
  const answer = await signInAtProvider(elsewhere.href, "alice", callbackUrl, jar);
  assert.equal(answer.searchParams.get("iss"), otherOp.issuer);
  await assertRefused(await deliver(jar, answer), 401, "signin_failed", /unexpected "iss"/);

  // Without the iss parameter, the other provider's code is no good at ours either.
  const again = createCookieJar();
  const at2 = await startLogin(again);
  const stripped = await signInAtProvider(
    new URL(at2.pathname + at2.search, otherOp.issuer).href,
    "alice",
    callbackUrl,
    again,
  );
  stripped.searchParams.delete("iss");
  await assertRefused(
    await deliver(again, stripped),
    401,
    "signin_failed",
    /"iss" \(issuer\) missing/,
  );
});

test("oidc callback refuses a code issued to another client (audience mismatch)", async () => {
  useApp();
  const jar = createCookieJar();
  const at = await startLogin(jar);
  at.searchParams.set("client_id", op.otherClientId);
  const answer = await signInAtProvider(at.href, "alice", callbackUrl, jar);
  await assertRefused(await deliver(jar, answer), 401, "signin_failed", /invalid_grant/);
});

test("oidc callback refuses 403 forbidden, without a session, when the role claim is missing or unmapped", async () => {
  useApp();
  await assertRefused(
    await signIn("nora"),
    403,
    "forbidden",
    /no role is granted here: the 'roles' claim is absent/,
  );
  await assertRefused(
    await signIn("uma"),
    403,
    "forbidden",
    /the 'roles' claim holds \["contractor"\]/,
  );
  // A browser gets a page saying so, with the way back.
  const jar = createCookieJar();
  const answer = await signInAtProvider((await startLogin(jar)).href, "nora", callbackUrl, jar);
  const page = await deliver(jar, answer, "text/html");
  assert.equal(page.status, 403);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  const text = await page.text();
  assert.match(text, /no role is granted here: the &#39;roles&#39; claim is absent/);
  assert.match(text, /<a href="\/signin">/);
  assert.ok(!page.headers.getSetCookie().some((c) => c.startsWith(`${SESSION_COOKIE}=`)));
});

test("oidc sign-in with next on another origin lands on /", async () => {
  useApp();
  for (const next of ["https://evil.example/", "//evil.example/x", "/\\evil.example"]) {
    const res = await signIn("olga", createCookieJar(), next);
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/");
  }
});

/** Delivers a sign-in this browser started, with a code the provider does not know. */
async function guessedCode(i: number): Promise<Response> {
  const own = createCookieJar();
  const at = await startLogin(own);
  const forged = new URL(callbackUrl);
  forged.searchParams.set("code", `guessed-code-${i}`);
  forged.searchParams.set("state", at.searchParams.get("state") as string);
  forged.searchParams.set("iss", op.issuer);
  return deliver(own, forged);
}

test("oidc callback rate-limits failed sign-ins: the 11th wrong code gets 429 and each is logged; a good answer is let in all the same", async () => {
  const { logs } = useApp();
  const jar = createCookieJar();
  const answer = await signInAtProvider((await startLogin(jar)).href, "olga", callbackUrl, jar);
  for (let i = 0; i < 10; i++) await assertRefused(await guessedCode(i), 401, "signin_failed");
  const res = await guessedCode(10);
  await assertRefused(res, 429, "too_many_attempts");
  assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
  const counted = logs.filter((l) => l.msg === "sign-in refused" && l.failures_in_window);
  assert.equal(counted.length, 10);
  // Behind a reverse proxy every browser shares the address: a right answer still gets in.
  const good = await deliver(jar, answer);
  assert.equal(good.status, 303);
  assert.ok(good.headers.getSetCookie().some((c) => c.startsWith(`${SESSION_COOKIE}=`)));
});

test("oidc callback does not count a provider's refusal or a person without a role: no one can lock an address out without a secret", async () => {
  const { logs } = useApp();
  for (let i = 0; i < 12; i++) {
    // Anyone can start a sign-in and send the provider's "no" back themselves.
    const jar = createCookieJar();
    const at = await startLogin(jar);
    const no = new URL(callbackUrl);
    no.searchParams.set("error", "access_denied");
    no.searchParams.set("state", at.searchParams.get("state") as string);
    no.searchParams.set("iss", op.issuer);
    await assertRefused(await deliver(jar, no), 401, "signin_failed", /access_denied/);
    await assertRefused(await signIn("nora"), 403, "forbidden", /no role is granted here/);
  }
  assert.ok(!logs.some((l) => l.msg === "sign-in refused" && l.failures_in_window));
  assert.equal(
    logs.filter((l) => l.msg === "sign-in refused" && /no role for /.test(String(l.how))).length,
    12,
  );
  // The address is not limited: a wrong code is refused as wrong, and a right one gets in.
  await assertRefused(await guessedCode(0), 401, "signin_failed");
  assert.equal((await signIn("olga")).status, 303);
});

test("oidc callback does not count answers that are not this browser's sign-in: another site cannot lock it out", async () => {
  const { logs } = useApp();
  // Another site's page sends the visitor's browser to the callback (an image), with no sign-in
  // of its own started: no flow cookie, or a flow cookie and another state.
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${callbackUrl}?code=x&state=y`, {
      redirect: "manual",
      headers: { "sec-fetch-site": "cross-site", "sec-fetch-dest": "image" },
    });
    await assertRefused(res, 401, "signin_failed", /not started in this browser/);
  }
  for (let i = 0; i < 12; i++) {
    const jar = createCookieJar();
    await startLogin(jar);
    await assertRefused(
      await deliver(jar, new URL(`${callbackUrl}?code=x&state=another`)),
      401,
      "signin_failed",
      /belongs to another sign-in/,
    );
  }
  assert.ok(
    logs.some((l) => l.how === "oidc: state mismatch"),
    "still logged",
  );
  assert.ok(!logs.some((l) => l.failures_in_window), "none counted");
  const res = await signIn("olga");
  assert.equal(res.status, 303, "the address may still sign in");
});

test("oidc sign-in reads the role claim from userinfo when the ID token lacks it", async () => {
  const strict = await startOidcProvider({ redirectUri: callbackUrl, rolesInIdToken: false });
  try {
    useApp({ issuer: strict.issuer, clientId: strict.clientId, clientSecret: strict.clientSecret });
    const jar = createCookieJar();
    assert.equal((await signIn("alice", jar)).status, 303);
    const me = await fetch(`${base}/api/v1/whoami`, { headers: { cookie: jar.header(base) } });
    assert.deepEqual(await me.json(), {
      subject: "alice",
      name: "Alice Admin",
      role: "admin",
      method: "oidc",
    });
  } finally {
    await strict.stop();
  }
});

test("oidc login answers 502 while the provider is down and works once it is up", async () => {
  const port = await freePort();
  useApp({ issuer: `http://127.0.0.1:${port}` });
  const down = await fetch(`${base}/auth/login`, { redirect: "manual" });
  assert.equal(down.status, 502);
  assert.equal((await down.json()).error, "signin_failed");
  const page = await fetch(`${base}/auth/login`, {
    redirect: "manual",
    headers: { accept: "text/html" },
  });
  assert.equal(page.status, 502);
  assert.match(await page.text(), /<h1>Sign-in failed<\/h1>/);

  const late = await startOidcProvider({ redirectUri: callbackUrl, port });
  try {
    useApp({ issuer: late.issuer, clientId: late.clientId, clientSecret: late.clientSecret });
    const res = await signIn("olga");
    assert.equal(res.status, 303);
  } finally {
    await late.stop();
  }
});

test("oidc endSessionUrl is the provider's sign-out page returning to /signin", async () => {
  const { oidc } = useApp();
  const url = new URL((await oidc.endSessionUrl()) as string);
  assert.equal(url.origin, op.issuer);
  assert.equal(url.searchParams.get("client_id"), "console");
  assert.equal(url.searchParams.get("post_logout_redirect_uri"), `${base}/signin`);
});

test("createOidc refuses an http issuer or public URL off this machine", () => {
  const auth = createAuth({ mode: "oidc" });
  const options = { auth, clientId: "c", roleClaim: "roles", roleMap: new Map() };
  assert.throws(
    () =>
      createOidc({
        ...options,
        issuer: "http://idp.example",
        publicUrl: "https://console.example",
      }),
    { name: "RangeError", message: /'OIDC_ISSUER' must be https/ },
  );
  assert.throws(
    () =>
      createOidc({
        ...options,
        issuer: "https://idp.example",
        publicUrl: "http://console.example",
      }),
    { name: "RangeError", message: /'PUBLIC_URL' must be https/ },
  );
});

test("a signed-in name is cut to 200 characters, never inside one", () => {
  const long = `${"a".repeat(199)}😀tail`;
  assert.equal(nameOf({ name: long }, "sub"), "a".repeat(199));
  assert.equal(nameOf({ name: "é".repeat(300) }, "sub").length, 200);
  assert.equal(nameOf({ email: "x@example.com" }, "sub"), "x@example.com");
  assert.equal(nameOf({}, "sub-1"), "sub-1");
});
