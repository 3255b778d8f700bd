// Token mode over the real app and database: who may read, who may act, the sign-in form, and the audit.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as v from "valibot";
import { type Role, tokenDigest } from "../../contracts/auth.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert } from "../incidents/_fixtures.ts";
import { createAuth } from "./auth.ts";
import { createEndedSessions } from "./ended_sessions.ts";
import { createFailureLimiter } from "./failure_limiter.ts";
import { createSealer, hmacKey } from "./sealed_value.ts";
import { openTokenStore } from "./token_store.ts";

const PEOPLE: Record<string, { role: Role; token: string }> = {
  victor: { role: "viewer", token: "victor-token-0123456789" },
  olga: { role: "operator", token: "olga-token-0123456789" },
  alice: { role: "admin", token: "alice-token-0123456789" },
};
const INCIDENT = "8c1f6f2e-2b1a-4c55-9d7e-0a1b2c3d4e5f";
const bearer = (who: string) => ({ authorization: `Bearer ${PEOPLE[who].token}` });

async function tokensFile(path: string, names: string[], expired: string[] = []) {
  const list = await Promise.all(
    names.map(async (name) => ({
      name,
      role: PEOPLE[name].role,
      sha256: await tokenDigest(PEOPLE[name].token),
      ...(expired.includes(name) ? { expires_at: "2020-01-01T00:00:00Z" } : {}),
    })),
  );
  await writeFile(path, JSON.stringify(list));
}

for (const target of testTargets()) {
  describe(`roles in token mode on ${target.kind}`, () => {
    let db: TestDatabase;
    let dir: string;
    let file: string;
    let app: ReturnType<typeof createBackendApp>;

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "roles-"));
      file = join(dir, "tokens.json");
      await tokensFile(file, ["victor", "olga", "alice"]);
      const tokens = await openTokenStore({ path: file, checkEveryMs: 0 });
      const auth = createAuth({
        mode: "token",
        tokens,
        limiter: createFailureLimiter({ max: 5 }),
      });
      app = createBackendApp({ database: db, auth });
      const res = await app.request(
        "/api/v1/alert",
        post(
          incidentAlert({
            incidentId: INCIDENT,
            event: "opened",
            sensors: [{ idx: 3, severity: 20 }],
          }),
        ),
      );
      assert.equal(res.status, 201, await res.text());
    });
    after(async () => {
      await db.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("without an identity nothing is read: the API says 401, a page sends to sign-in", async () => {
      for (const path of [
        "/api/v1/incidents",
        "/api/v1/alerts",
        "/api/v1/silences",
        "/api/v1/verdicts",
      ]) {
        const res = await app.request(path);
        assert.equal(res.status, 401, path);
        assert.equal((await res.json()).error, "unauthenticated");
      }
      const page = await app.request("/quality?weeks=4");
      assert.equal(page.status, 303);
      assert.equal(page.headers.get("location"), "/signin?next=%2Fquality%3Fweeks%3D4");
      assert.equal((await app.request("/health/live")).status, 200);
      assert.equal((await app.request("/signin")).status, 200);
      // A console form sent after the session ended: to sign-in, saying so, then back to its page.
      const base = "http://console.test";
      const form = await app.request(
        `${base}/incidents/${INCIDENT}/verdict`,
        formPost({ verdict: "maintenance" }, { referer: `${base}/incidents/${INCIDENT}` }),
      );
      assert.equal(form.status, 303);
      assert.equal(
        form.headers.get("location"),
        `/signin?next=${encodeURIComponent(`/incidents/${INCIDENT}`)}&ended=1`,
      );
      const said = await (await app.request(form.headers.get("location")!)).text();
      assert.match(said, /role="alert">Your session ended, so what you sent was not recorded/);
      const elsewhere = await app.request(
        `${base}/quality/mute`,
        formPost({ feature: "x" }, { referer: "http://evil.test/quality" }),
      );
      assert.equal(elsewhere.headers.get("location"), "/signin?next=%2F&ended=1");
      // A script's JSON is answered as the API answers.
      const script = await app.request("/data/send", { method: "POST" });
      assert.equal(script.status, 401);
    });

    test("a viewer reads but cannot act; an operator acts under their own name", async () => {
      assert.equal(
        (await app.request("/api/v1/incidents", { headers: bearer("victor") })).status,
        200,
      );
      const verdict = { verdict: "false_positive", cause: "valve test", by: "Mallory" };
      const refused = await app.request(
        `/api/v1/incidents/${INCIDENT}/verdict`,
        post(verdict, bearer("victor")),
      );
      assert.equal(refused.status, 403);
      assert.equal((await refused.json()).error, "forbidden");
      const silence = {
        matchers: { stream: "line-1", sensors: [] },
        ends_at: new Date(Date.now() + 3_600_000).toISOString(),
        reason: "pump swap",
      };
      assert.equal(
        (
          await app.request(
            "/api/v1/silences",
            post({ ...silence, created_by: "x" }, bearer("victor")),
          )
        ).status,
        403,
      );
      const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM incident_verdict`;
      assert.equal(n, 0, "a refused verdict stores nothing");

      const given = await app.request(
        `/api/v1/incidents/${INCIDENT}/verdict`,
        post(verdict, bearer("olga")),
      );
      assert.equal(given.status, 201, await given.clone().text());
      assert.equal(
        (await given.json()).verdict.by,
        "olga",
        "the signed-in name, not the typed one",
      );
      const created = await app.request("/api/v1/silences", post(silence, bearer("olga")));
      assert.equal(created.status, 201, await created.clone().text());
      assert.equal((await created.json()).silence.created_by, "olga");
    });

    test("the audit lists every action newest first under its identity, for admins only", async () => {
      assert.equal((await app.request("/api/v1/audit", { headers: bearer("olga") })).status, 403);
      const res = await app.request("/api/v1/audit", { headers: bearer("alice") });
      assert.equal(res.status, 200);
      const { events } = await res.json();
      const mine = events.filter(
        (e: { actor: { subject: string } }) => e.actor.subject === "token:olga",
      );
      assert.deepEqual(
        mine.map((e: { action: string }) => e.action),
        ["silence.create", "incident.verdict"],
      );
      assert.deepEqual(mine[1].actor, {
        subject: "token:olga",
        name: "olga",
        method: "token",
        role: "operator",
      });
      assert.equal(mine[1].target, `incident:${INCIDENT}`);
      assert.equal(mine[1].detail.verdict, "false_positive");
      for (const actor of ["token:olga", "olga"]) {
        const byActor = await app.request(`/api/v1/audit?actor=${actor}`, {
          headers: bearer("alice"),
        });
        assert.deepEqual(
          (await byActor.json()).events.map((e: { audit_id: string }) => e.audit_id),
          mine.map((e: { audit_id: string }) => e.audit_id),
          `actor=${actor}: the subject or the name events show`,
        );
      }
      const filtered = await app.request("/api/v1/audit?action=incident.verdict&limit=1", {
        headers: bearer("alice"),
      });
      assert.equal((await filtered.json()).events.length, 1);
      const cursor = (at: string, id: string) =>
        btoa(JSON.stringify([at, id]))
          .replaceAll("+", "-")
          .replaceAll("/", "_")
          .replace(/=+$/, "");
      for (const query of [
        "limit=0",
        "actor=ana%00",
        "from=999999999999999",
        `cursor=${cursor("2026-11-24T10:00:00.000Z", "9999999999999999999")}`,
        `cursor=${cursor("-000001-01-01T00:00:00.000Z", "1")}`,
      ]) {
        const bad = await app.request(`/api/v1/audit?${query}`, { headers: bearer("alice") });
        assert.equal(bad.status, 400, query);
        assert.equal((await bad.json()).error, "invalid_request", query);
      }
      const last = await app.request(
        `/api/v1/audit?cursor=${cursor("2026-11-24T10:00:00.000Z", "9223372036854775807")}`,
        { headers: bearer("alice") },
      );
      assert.equal(last.status, 200, "the largest bigint is a cursor");
      await assert.rejects(
        db.sql`UPDATE audit_event SET actor_name = 'someone else'`,
        /append-only/,
      );
      await assert.rejects(db.sql`DELETE FROM audit_event`, /append-only/);
    });

    test("the sign-in form starts a session; the cookie acts only from this site", async () => {
      const cross = await app.request(
        "/signin",
        formPost({ token: PEOPLE.olga.token, next: "/" }, { origin: "https://evil.example" }),
      );
      assert.equal(cross.status, 403, "a login CSRF is refused");
      assert.equal(cross.headers.get("set-cookie"), null);

      const res = await app.request(
        "/signin",
        formPost({ token: PEOPLE.olga.token, next: "https://evil.example/x" }),
      );
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/", "never to another origin");
      const setCookie = res.headers.get("set-cookie") ?? "";
      assert.match(setCookie, /session=[^;]+;/);
      assert.match(setCookie, /HttpOnly/);
      assert.match(setCookie, /SameSite=Lax/);
      assert.match(setCookie, /Max-Age=\d+/);
      const cookie = setCookie.split(";")[0];

      const page = await app.request(`/incidents/${INCIDENT}`, { headers: { cookie } });
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /Signed in as <strong>olga<\/strong> \(operator\)/);
      assert.doesNotMatch(html, /id="verdict-by"/, "no typed name when signed in");

      const ack = { note: "looking" };
      const forged = await app.request(
        `/api/v1/incidents/${INCIDENT}/ack`,
        post(ack, { cookie, origin: "https://evil.example", "sec-fetch-site": "cross-site" }),
      );
      assert.equal(forged.status, 403);
      assert.equal((await forged.json()).error, "cross_site");
      const ok = await app.request(`/api/v1/incidents/${INCIDENT}/ack`, post(ack, { cookie }));
      assert.equal(ok.status, 201);

      const tampered = `${cookie.slice(0, -3)}xyz`;
      const refused = await app.request("/api/v1/incidents", { headers: { cookie: tampered } });
      assert.equal(refused.status, 401, "a forged session reads nothing");

      // Removing the token from the file ends the sessions it opened.
      await tokensFile(file, ["victor", "alice"]);
      assert.equal((await app.request("/api/v1/incidents", { headers: { cookie } })).status, 401);
      assert.equal(
        (await app.request("/api/v1/incidents", { headers: bearer("olga") })).status,
        401,
      );
      await tokensFile(file, ["victor", "olga", "alice"], ["victor"]);
      assert.equal(
        (await app.request("/api/v1/incidents", { headers: bearer("victor") })).status,
        401,
        "an expired token is refused",
      );
    });

    test("a viewer's pages hide the forms that act", async () => {
      await tokensFile(file, ["victor", "olga", "alice"]);
      const page = await app.request(`/incidents/${INCIDENT}`, { headers: bearer("victor") });
      const html = await page.text();
      assert.doesNotMatch(html, /action="\/incidents\/[^"]+\/verdict"/);
      assert.match(html, /Giving a verdict needs the operator role/);
      const silences = await (await app.request("/silences", { headers: bearer("victor") })).text();
      assert.doesNotMatch(silences, /action="\/silences"/);
    });

    test("failed sign-ins are rate-limited per address; a right token is not held back", async () => {
      let last: Response | undefined;
      for (let i = 0; i < 7; i++) {
        last = await app.request("/api/v1/incidents", {
          headers: { authorization: "Bearer nope" },
        });
      }
      assert.equal(last?.status, 429);
      assert.ok(Number(last?.headers.get("retry-after")) > 0);
      // Behind a reverse proxy every client shares the address: one script's stale token must not
      // lock out the others (tokens are 256 random bits: the limit guards nothing guessable).
      const res = await app.request("/api/v1/incidents", { headers: bearer("alice") });
      assert.equal(res.status, 200);
      const wrong = await app.request("/api/v1/incidents", {
        headers: { authorization: "Bearer nope" },
      });
      assert.equal(wrong.status, 429, "wrong ones still wait");
    });
  });
}

function formPost(
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

/** Reads an event stream until it ends; `ended` is false when it was still open after `ms`. */
async function readToEnd(
  reader: ReadableStreamDefaultReader<string>,
  ms = 10_000,
): Promise<{ text: string; ended: boolean }> {
  const deadline = AbortSignal.timeout(ms);
  const stillOpen = new Promise<"open">((resolve) =>
    deadline.addEventListener("abort", () => resolve("open"), { once: true }),
  );
  let text = "";
  for (;;) {
    const next = await Promise.race([reader.read(), stillOpen]);
    if (next === "open") {
      await reader.cancel();
      return { text, ended: false };
    }
    if (next.done) return { text, ended: true };
    text += next.value;
  }
}

/** Opens an event stream and reads it up to its `ready` event. */
async function openStream(
  app: ReturnType<typeof createBackendApp>,
  path: string,
  headers: Record<string, string>,
): Promise<ReadableStreamDefaultReader<string>> {
  const res = await app.request(path, { headers });
  assert.equal(res.status, 200, path);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = AbortSignal.timeout(10_000);
  while (!text.includes("event: ready") && !deadline.aborted) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.match(text, /event: ready/);
  return reader;
}

for (const target of testTargets()) {
  describe(`sign-in in token mode on ${target.kind}: token rotation, proxies, lock-outs, streams, odd input`, () => {
    let db: TestDatabase;
    let dir: string;
    let file: string;
    const SECRET = "a-session-secret-of-at-least-32-characters";

    /** A fresh app (its own failure counts) over the shared database and tokens file. */
    async function build(options: Partial<Parameters<typeof createAuth>[0]> = {}) {
      const tokens = await openTokenStore({ path: file, checkEveryMs: 0 });
      const auth = createAuth({
        mode: "token",
        tokens,
        sessionSecret: SECRET,
        limiter: createFailureLimiter({ max: 5 }),
        ...options,
      });
      return createBackendApp({ database: db, auth });
    }
    const signIn = (
      app: ReturnType<typeof createBackendApp>,
      token: string,
      headers: Record<string, string> = {},
      url = "/signin",
    ) => app.request(url, formPost({ token, next: "/" }, headers));
    const cookieOf = (res: Response) => (res.headers.get("set-cookie") ?? "").split(";")[0];

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "signin-"));
      file = join(dir, "tokens.json");
    });
    after(async () => {
      await db.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("a removed token's session stays ended when a new token is added under the same name", async () => {
      await tokensFile(file, ["olga", "alice"]);
      const app = await build();
      const cookie = cookieOf(await signIn(app, PEOPLE.olga.token));
      assert.match(cookie, /^session=./);
      assert.equal((await app.request("/api/v1/incidents", { headers: { cookie } })).status, 200);

      // The leaked token is rotated: removed, then olga gets a new one under her name.
      await tokensFile(file, ["alice"]);
      assert.equal((await app.request("/api/v1/incidents", { headers: { cookie } })).status, 401);
      const fresh = "olga-new-token-9876543210";
      await writeFile(
        file,
        JSON.stringify([
          { name: "olga", role: "operator", sha256: await tokenDigest(fresh) },
          { name: "alice", role: "admin", sha256: await tokenDigest(PEOPLE.alice.token) },
        ]),
      );
      const old = await app.request("/api/v1/incidents", { headers: { cookie } });
      assert.equal(old.status, 401, "the old token's session does not come back");
      assert.equal((await old.json()).error, "unauthenticated");
      const page = await app.request("/", { headers: { cookie } });
      assert.equal(page.status, 303, "a page sends the old session to sign-in");
      const renewed = cookieOf(await signIn(app, fresh));
      assert.equal(
        (await app.request("/api/v1/incidents", { headers: { cookie: renewed } })).status,
        200,
      );
    });

    test("signing out ends the session: a copy of its cookie is refused afterwards, on every backend", async () => {
      await tokensFile(file, ["olga"]);
      const endedSessions = createEndedSessions(() => db);
      const app = await build({ endedSessions });
      const other = await build({ endedSessions });
      const cookie = cookieOf(await signIn(app, PEOPLE.olga.token));
      assert.equal((await app.request("/api/v1/incidents", { headers: { cookie } })).status, 200);
      const out = await app.request(
        "/signout",
        formPost({}, { cookie, "sec-fetch-site": "same-origin" }),
      );
      assert.equal(out.status, 303);
      assert.match(out.headers.get("set-cookie") ?? "", /^session=;/);
      // The cookie as it was before signing out, kept by someone else.
      for (const backend of [app, other]) {
        const res = await backend.request("/api/v1/incidents", { headers: { cookie } });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).error, "unauthenticated");
      }
      // Signing in again starts a new session, which works.
      const again = cookieOf(await signIn(app, PEOPLE.olga.token));
      assert.equal(
        (await other.request("/api/v1/incidents", { headers: { cookie: again } })).status,
        200,
      );
    });

    test("a sign-in the audit cannot record answers an error, sets no cookie and signs nobody in", async () => {
      await tokensFile(file, ["olga"]);
      const app = await build();
      const signIns = async () =>
        (
          await db.sql`SELECT count(*)::int AS n FROM audit_event WHERE action = 'session.signin'`
        )[0].n as number;
      const before = await signIns();
      // The audit table out of reach, as when the database fails the insert.
      await db.sql`ALTER TABLE audit_event RENAME TO audit_event_away`;
      let res: Response;
      try {
        res = await signIn(app, PEOPLE.olga.token);
      } finally {
        await db.sql`ALTER TABLE audit_event_away RENAME TO audit_event`;
      }
      assert.equal(res.status, 500);
      assert.equal(res.headers.get("set-cookie"), null, "no session for an unrecorded sign-in");
      const cookie = cookieOf(res);
      const later = await app.request("/api/v1/incidents", { headers: { cookie } });
      assert.equal(later.status, 401, "that client is still signed out");
      assert.equal(await signIns(), before);
      // Once the audit records again, the same token signs in, recorded once.
      const again = cookieOf(await signIn(app, PEOPLE.olga.token));
      assert.equal(
        (await app.request("/api/v1/incidents", { headers: { cookie: again } })).status,
        200,
      );
      assert.equal(await signIns(), before + 1);
    });

    test("a token session sealed before sessions named their token's fingerprint is refused, not a crash", async () => {
      await tokensFile(file, ["olga"]);
      const app = await build();
      // A session as the previous release sealed it: the token's name only.
      const sealer = createSealer(
        hmacKey(SECRET),
        v.looseObject({ exp: v.number() }),
        Date.now,
        4096,
      );
      const value = await sealer.seal({
        sub: "token:olga",
        name: "olga",
        role: "operator",
        method: "token",
        token: "olga",
        exp: Date.now() + 3_600_000,
      });
      const res = await app.request("/api/v1/incidents", {
        headers: { cookie: `session=${value}` },
      });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error, "unauthenticated");
      assert.match(res.headers.get("set-cookie") ?? "", /^session=;/, "the old cookie is cleared");
    });

    test("behind an https proxy with PUBLIC_URL, sign-in and cookie actions from its origin are this site's", async () => {
      await tokensFile(file, ["olga"]);
      // The proxy ends TLS: the backend sees http://console.plant, the browser is on https.
      const app = await build({ publicUrl: "https://console.plant/" });
      const browser = { origin: "https://console.plant", "sec-fetch-site": "same-origin" };
      const res = await signIn(app, PEOPLE.olga.token, browser, "http://console.plant/signin");
      assert.equal(res.status, 303, await res.clone().text());
      const setCookie = res.headers.get("set-cookie") ?? "";
      assert.match(setCookie, /; Secure/, "https PUBLIC_URL: the session cookie is Secure");
      const cookie = cookieOf(res);
      const silence = {
        matchers: { stream: "line-1", sensors: [] },
        ends_at: new Date(Date.now() + 3_600_000).toISOString(),
        reason: "pump swap",
      };
      const acted = await app.request(
        "http://console.plant/api/v1/silences",
        post(silence, { cookie, ...browser }),
      );
      assert.equal(acted.status, 201, await acted.clone().text());
      // A form sent after the session ended goes back to its page, known by PUBLIC_URL's origin.
      const ended = await app.request(
        "http://console.plant/quality/mute",
        formPost(
          { feature: "x" },
          { ...browser, referer: "https://console.plant/quality?weeks=4" },
        ),
      );
      assert.equal(ended.headers.get("location"), "/signin?next=%2Fquality%3Fweeks%3D4&ended=1");

      const evil = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
      const forged = await app.request(
        "http://console.plant/api/v1/silences",
        post(silence, { cookie, ...evil }),
      );
      assert.equal(forged.status, 403);
      assert.equal((await forged.json()).error, "cross_site");
      const login = await signIn(app, PEOPLE.olga.token, evil, "http://console.plant/signin");
      assert.equal(login.status, 403, "still no login CSRF");
      const signOut = await app.request("http://console.plant/signout", {
        method: "POST",
        headers: { cookie, ...browser },
      });
      assert.equal(signOut.status, 303);
    });

    test("another site's sign-in forms, and empty ones, do not lock the address out", async () => {
      await tokensFile(file, ["olga"]);
      const app = await build();
      const evil = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
      for (let i = 0; i < 12; i++) {
        const res = await signIn(app, "guess-0123456789", evil);
        assert.equal(res.status, 403, `cross-site form ${i}`);
        assert.equal((await res.json()).error, "cross_site");
      }
      for (let i = 0; i < 12; i++) {
        assert.equal((await signIn(app, "")).status, 401, `empty form ${i}`);
      }
      const res = await signIn(app, PEOPLE.olga.token);
      assert.equal(res.status, 303, "the address may still sign in");
      // Wrong tokens still count: the 6th waits; a right one still signs in.
      let last = 0;
      for (let i = 0; i < 6; i++) last = (await signIn(app, "wrong-token-0123456789")).status;
      assert.equal(last, 429);
      assert.equal((await signIn(app, PEOPLE.olga.token)).status, 303);
    });

    test("an open incident stream ends when its token is removed, before sending another change", async () => {
      await tokensFile(file, ["olga", "alice"]);
      const app = await build();
      const reader = await openStream(app, "/api/v1/incidents/stream", bearer("olga"));
      await tokensFile(file, ["alice"]);
      const id = crypto.randomUUID();
      const stored = await app.request(
        "/api/v1/alert",
        post(
          incidentAlert({ incidentId: id, event: "opened", sensors: [{ idx: 3, severity: 20 }] }),
        ),
      );
      assert.equal(stored.status, 201);
      const { text, ended } = await readToEnd(reader);
      assert.ok(ended, "the stream was closed");
      assert.ok(!text.includes(id), "nothing sent after the token went");
    });

    test("the console's live rows end when the session expires", async () => {
      await tokensFile(file, ["olga"]);
      let clock = Date.now();
      const app = await build({ now: () => clock, sessionMaxAgeMs: 60_000 });
      const cookie = cookieOf(await signIn(app, PEOPLE.olga.token));
      const reader = await openStream(app, "/events", { cookie });
      clock += 61_000;
      const id = crypto.randomUUID();
      await app.request(
        "/api/v1/alert",
        post(
          incidentAlert({
            incidentId: id,
            event: "opened",
            start: new Date().toISOString(),
            sensors: [{ idx: 3, severity: 20 }],
          }),
        ),
      );
      const { text, ended } = await readToEnd(reader);
      assert.ok(ended, "the stream was closed");
      assert.ok(!text.includes(id), "nothing sent after the session ended");
    });

    test("odd sign-in input answers 4xx or a safe redirect, never 500", async () => {
      await tokensFile(file, ["olga"]);
      const app = await build();
      for (const next of ["/\u0000x", "/\u0001", "/a\u007f", "/\u001b[31m"]) {
        const res = await app.request("/signin", formPost({ token: PEOPLE.olga.token, next }));
        assert.equal(res.status, 303, JSON.stringify(next));
        assert.equal(res.headers.get("location"), "/", JSON.stringify(next));
      }
      const page = await app.request(`/signin?next=${encodeURIComponent("/\u0000")}`);
      assert.equal(page.status, 200);
      assert.ok(!(await page.text()).includes("\u0000"));
      const broken = await app.request("/signin", {
        method: "POST",
        headers: { "content-type": "multipart/form-data; boundary=XYZ" },
        body: "--XYZ\r\nbroken",
      });
      assert.equal(broken.status, 400);
      assert.equal((await broken.json()).error, "invalid_request");
    });
  });
}
