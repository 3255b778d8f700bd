// OIDC sign-in in Chromium through the provider's own pages, alone and in the real backend app with roles and audit.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import { Hono } from "hono";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { parseRoleMap } from "../../contracts/auth.ts";
import { HttpError } from "../../contracts/error.ts";
import { freePort } from "../_test/free_port.ts";
import { startOidcProvider, type TestProvider } from "../_test/oidc_provider.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { launchChromium } from "../console/_browser_checks.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { type Auth, createAuth } from "./auth.ts";
import { createOidc } from "./oidc.ts";
import { SESSION_COOKIE } from "./session.ts";

const SECRET = "a-session-secret-of-at-least-32-characters";
const INCIDENT = "5d0f3c1e-7a2b-4c8d-9e0f-1a2b3c4d5e6f";

let server: ServerType;
let base: string;
let op: TestProvider;
let browser: Browser;
let db: TestDatabase;
/** The app the server answers with. */
let current: Hono;

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  op = await startOidcProvider({ redirectUri: `${base}/auth/callback` });
  server = await new Promise<ServerType>((resolve) => {
    const s = serve(
      { fetch: (req, env) => current.fetch(req, env), port, hostname: "127.0.0.1" },
      () => resolve(s),
    );
  });
  db = await testTargets()[0].open();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
  await op?.stop();
  await db?.dispose();
});

function oidcFor(auth: Auth) {
  return createOidc({
    auth,
    issuer: op.issuer,
    clientId: op.clientId,
    clientSecret: op.clientSecret,
    publicUrl: base,
    roleClaim: "roles",
    roleMap: parseRoleMap("viewer=viewer,operator=operator,admin=admin"),
    secret: SECRET,
  });
}

/** Signs in through the provider's own pages as `login`, ending on `next` in the app. */
async function signIn(context: BrowserContext, login: string, next: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/auth/login?next=${encodeURIComponent(next)}`);
  assert.equal(new URL(page.url()).origin, op.issuer, "on the provider's login page");
  const loginPage = page.url();
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', "any password");
  await page.click('button[type="submit"]');
  // Next comes the app, or the provider's consent page (once per person and client).
  await page.waitForURL((u) => u.href !== loginPage, { timeout: 10_000 });
  if (new URL(page.url()).origin === op.issuer) {
    await page.waitForSelector('input[name="prompt"][value="consent"]', { state: "attached" });
    await page.click('button[type="submit"]');
  }
  await page.waitForURL((u) => u.origin === base, { timeout: 10_000 });
  return page;
}

/** `fetch` from inside the page, as its own script would (same origin, its cookies). */
function pageFetch(page: Page, path: string, init: { method?: string; body?: unknown } = {}) {
  return page.evaluate(
    async ([path, method, body]) => {
      const res = await fetch(path, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: await res.json() };
    },
    [path, init.method ?? "GET", init.body] as const,
  );
}

test("oidc sign-in in Chromium through the provider's login page starts an HttpOnly SameSite=Lax session", async () => {
  const auth = createAuth({ mode: "oidc", sessionSecret: SECRET });
  const app = new Hono();
  app.use(auth.middleware);
  app.route("/auth", oidcFor(auth).routes);
  app.get("/api/v1/whoami", (c) => c.json(auth.identity(c)));
  app.onError((error, c) =>
    error instanceof HttpError
      ? c.json(error.body, error.status as 400)
      : c.json({ error: String(error) }, 500),
  );
  current = app;
  const context = await browser.newContext();
  try {
    const page = await signIn(context, "olga", "/api/v1/whoami");
    assert.equal(page.url(), `${base}/api/v1/whoami`);
    assert.deepEqual(JSON.parse((await page.textContent("body")) ?? ""), {
      subject: "olga",
      name: "Olga Operator",
      role: "operator",
      method: "oidc",
    });
    const session = (await context.cookies(base)).find((c) => c.name === SESSION_COOKIE);
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.sameSite, "Lax");
    assert.ok((session?.expires ?? 0) > Date.now() / 1000, "the session cookie expires");
    assert.ok(
      !(await context.cookies(base)).some((c) => c.name === "oidc_flow"),
      "flow cookie gone",
    );
  } finally {
    await context.close();
  }
});

test("oidc people act in the console by their role, and the audit records who", async () => {
  const auth = createAuth({ mode: "oidc", sessionSecret: SECRET });
  const app = createBackendApp({
    database: db,
    auth,
    signInProvider: { path: "/auth", routes: oidcFor(auth).routes },
  });
  current = app;
  const alert = incidentAlert({
    incidentId: INCIDENT,
    event: "opened",
    sensors: [{ idx: 2, severity: 30 }],
  });
  const stored = await app.request("/api/v1/alert", post(alert));
  assert.equal(stored.status, 201, await stored.text());

  // Olga (operator) gives a verdict with the Incident page's form.
  const olga = await browser.newContext();
  try {
    const page = await signIn(olga, "olga", `/incidents/${INCIDENT}`);
    assert.equal(new URL(page.url()).pathname, `/incidents/${INCIDENT}`);
    await page.selectOption("#verdict-kind", "false_positive");
    await page.fill("#verdict-cause", "valve test");
    await page.click('form.verdict button[type="submit"]');
    await page.waitForSelector('#verdict-state[data-verdict="false_positive"]', {
      timeout: 10_000,
    });
    assert.match((await page.textContent("#verdict-state")) ?? "", /Olga Operator/);
  } finally {
    await olga.close();
  }

  // Victor (viewer) sees no verdict form, and the API refuses him.
  const victor = await browser.newContext();
  try {
    const page = await signIn(victor, "victor", `/incidents/${INCIDENT}`);
    assert.equal(await page.locator("form.verdict").count(), 0);
    assert.match(
      (await page.textContent("main")) ?? "",
      /Giving a verdict needs the operator role/,
    );
    const refused = await pageFetch(page, `/api/v1/incidents/${INCIDENT}/verdict`, {
      method: "POST",
      body: { verdict: "true_positive" },
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error, "forbidden");
  } finally {
    await victor.close();
  }

  // Alice (admin) reads the audit: Olga's verdict under her provider subject.
  const alice = await browser.newContext();
  try {
    const page = await signIn(alice, "alice", "/");
    const audit = await pageFetch(page, "/api/v1/audit?action=incident.verdict");
    assert.equal(audit.status, 200);
    const events = audit.json.events as {
      actor: unknown;
      target: string;
      detail: { verdict: string };
    }[];
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.deepEqual(events[0].actor, {
      subject: "olga",
      name: "Olga Operator",
      method: "oidc",
      role: "operator",
    });
    assert.equal(events[0].target, `incident:${INCIDENT}`);
    assert.equal(events[0].detail.verdict, "false_positive");
  } finally {
    await alice.close();
  }
});
