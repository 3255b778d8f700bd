import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { servedModels, startEngineModelsStandIn } from "../_test/engine_models_stand_in.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import { createAuth } from "../auth/auth.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { incidentAlert, lifecycle } from "../incidents/_fixtures.ts";
import { createEngineModelsReader } from "./engine_models.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const TOKEN = "console-token-for-tests";
const HOSTILE = '<script>alert("x")</script>';

function form(fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

describe("console pages", () => {
  let db: TestDatabase;
  let app: ReturnType<typeof createBackendApp>;
  let guarded: ReturnType<typeof createBackendApp>;
  const store = async (alert: unknown) => {
    assert.equal((await app.request("/api/v1/alert", post(alert))).status, 201);
  };

  before(async () => {
    db = await testTargets()[0].open();
    app = createBackendApp({ database: db });
    guarded = createBackendApp({ database: db, consoleToken: TOKEN });
  });
  after(() => db.dispose());

  test("the Now page lists open incidents server-side, with headings and safe headers", async () => {
    const id = crypto.randomUUID();
    await store(lifecycle(id, new Date().toISOString())[0]);
    const res = await app.request("/");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /text\/html/);
    assert.match(res.headers.get("content-security-policy")!, /script-src 'self'/);
    const page = await res.text();
    assert.match(page, /^<!doctype html>/);
    assert.match(page, /<h1>Now<\/h1>/);
    assert.ok(page.includes(`href="/incidents/${id}"`));
    assert.ok(page.includes("feature_4242"));
    assert.match(page, /<html lang="en">/);
  });

  test("the live stream starts with the page's rows, then sends each changed incident as a row", async () => {
    const existing = crypto.randomUUID();
    await store(lifecycle(existing, new Date().toISOString())[0]);
    const abort = new AbortController();
    const res = await app.request("/events", { signal: abort.signal });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const readUntil = async (needle: string) => {
      const deadline = AbortSignal.timeout(10_000);
      while (!text.includes(needle) && !deadline.aborted) text += (await reader.read()).value ?? "";
      assert.ok(text.includes(needle), `stream never carried ${needle}`);
    };
    await readUntil(`data-incident=\\"${existing}\\"`);
    const fresh = crypto.randomUUID();
    await store(
      incidentAlert({
        incidentId: fresh,
        event: "opened",
        start: new Date().toISOString(),
        sensors: [{ idx: 8, severity: 4, name: HOSTILE }],
      }),
    );
    await readUntil(`data-incident=\\"${fresh}\\"`);
    const event = text.split("\n\n").find((e) => e.includes(`"incident_id":"${fresh}"`))!;
    const data = JSON.parse(
      event
        .split("\n")
        .find((l) => l.startsWith("data: "))!
        .slice(6),
    );
    assert.equal(data.state, "open");
    assert.match(data.row, /^<tr data-incident=/);
    assert.ok(!data.row.includes(HOSTILE) && data.row.includes("&lt;script&gt;"));
    // A verdict on a resolved incident three days old: the page lists no such incident, so the
    // message carries no row (the browser takes it out of the lists, not into "last hour").
    const old = crypto.randomUUID();
    for (const alert of lifecycle(old, new Date(Date.now() - 3 * 86_400_000).toISOString())) {
      await store(alert);
    }
    const verdict = await app.request(
      `/api/v1/incidents/${old}/verdict`,
      post({ verdict: "false_positive", by: "Ana" }),
    );
    assert.equal(verdict.status, 201);
    await readUntil(`"incident_id":"${old}","state":"resolved"`);
    const late = text
      .split("\n\n")
      .findLast((e) => e.includes(`"incident_id":"${old}","state":"resolved"`))!;
    const message = JSON.parse(
      late
        .split("\n")
        .find((l) => l.startsWith("data: "))!
        .slice(6),
    );
    assert.deepEqual([message.state, message.row], ["resolved", ""]);
    abort.abort();
    await reader.cancel();
  });

  test("every value is escaped: a sensor named <script> renders as text", async () => {
    const id = crypto.randomUUID();
    await store(
      incidentAlert({
        incidentId: id,
        event: "opened",
        start: new Date().toISOString(),
        sensors: [{ idx: 3, severity: 9, name: HOSTILE }],
      }),
    );
    for (const path of ["/", `/incidents/${id}`, "/overview?period=1h"]) {
      const page = await (await app.request(path)).text();
      assert.ok(!page.includes(HOSTILE), path);
      assert.ok(page.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), path);
    }
  });

  test("the model that scored an incident is shown as name@version, escaped, on Now and its page", async () => {
    const id = crypto.randomUUID();
    const start = new Date().toISOString();
    const version = '<img src=x onerror="alert(1)">';
    await store(
      incidentAlert({ incidentId: id, event: "opened", start, sensors: [{ idx: 3, severity: 9 }] }),
    );
    await store(
      incidentAlert({
        incidentId: id,
        event: "updated",
        start,
        at: 2,
        sensors: [{ idx: 3, severity: 12 }],
        model: { name: "boiler.v2", version },
      }),
    );
    const escaped = "boiler.v2@&lt;img src=x onerror=&quot;alert(1)&quot;&gt;";
    const now = await (await app.request("/")).text();
    const row = now.slice(now.indexOf(`data-incident="${id}"`));
    assert.ok(row.slice(0, row.indexOf("</tr>")).includes(escaped), "the Now row names the model");
    const page = await (await app.request(`/incidents/${id}`)).text();
    for (const html of [now, page]) assert.ok(!html.includes(version));
    assert.ok(page.includes(`<code id="incident-model">${escaped}</code>`));
    assert.ok(page.includes('<code id="incident-opened-model">featurewise_ocsvm@2.2.0</code>'));
    assert.ok(page.includes('<code class="model">featurewise_ocsvm@2.2.0</code>'), "timeline");
    assert.ok(page.includes(`<code class="model">${escaped}</code>`), "timeline");
  });

  test("the Incident page shows the timeline and each sensor's window and typical band", async () => {
    const id = crypto.randomUUID();
    for (const alert of lifecycle(id)) await store(alert);
    const page = await (await app.request(`/incidents/${id}`)).text();
    assert.match(page, /<h1>Incident on stream default/);
    for (const event of ["opened", "updated", "resolved"]) {
      assert.ok(page.includes(`data-event="${event}"`), event);
    }
    assert.ok(page.includes('data-values="[10,11,10.5,12,70]"'));
    assert.ok(page.includes('data-low="8"') && page.includes('data-high="13"'));
    assert.ok(page.indexOf("feature_4242") < page.indexOf("feature_17"), "strongest first");
    assert.match(page, /<label for="ack-by">/);
    const missing = await app.request(`/incidents/${crypto.randomUUID()}`);
    assert.equal(missing.status, 404);
    assert.equal((await app.request("/incidents/nope")).status, 400);
  });

  test("a refused acknowledgement names the field by its label, marks it, and takes names as long as the API", async () => {
    const id = crypto.randomUUID();
    await store(lifecycle(id)[0]);
    const bad = await app.request(`/incidents/${id}/ack`, form({ by: " ", note: "on it" }));
    assert.equal(bad.status, 400);
    const page = await bad.text();
    assert.match(
      page,
      /<p class="error" role="alert" id="ack-error" tabindex="-1">Not acknowledged: “Your name” must be a name of 1\.\.200 characters<\/p>/,
    );
    const by = page.slice(page.indexOf('<input id="ack-by"'));
    assert.match(by.slice(0, by.indexOf(">")), /aria-invalid="true" aria-describedby="ack-error"/);
    assert.equal(page.split('aria-invalid="true"').length - 1, 1, "only that field");
    // The field lets in what the API accepts (ackBodySchema: 200): it says 200, so takes 200.
    assert.match(by.slice(0, by.indexOf(">")), /maxlength="200"/);
    const long = await app.request(`/incidents/${id}/ack`, form({ by: "A".repeat(200) }));
    assert.equal(long.status, 303);
  });

  test("the acknowledge form records the acknowledgement and redirects back", async () => {
    const id = crypto.randomUUID();
    await store(lifecycle(id)[0]);
    const bad = await app.request(`/incidents/${id}/ack`, form({ by: " " }));
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /role="alert"/);
    const res = await app.request(`/incidents/${id}/ack`, form({ by: "Ana", note: "on it" }));
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), `/incidents/${id}?done=ack`);
    const page = await (await app.request(`/incidents/${id}?done=ack`)).text();
    // Isolated (<bdi>): a right-to-left override in a name cannot reorder the time after it.
    assert.match(page, /Acknowledged by <strong><bdi>Ana<\/bdi><\/strong> at <time /);
    // The page after the form says it was recorded, in a message the console's script focuses.
    assert.match(page, /<p id="ack-done" role="status" class="done" tabindex="-1">/);
    const plain = await (await app.request(`/incidents/${id}?done=elsewhere`)).text();
    assert.ok(!plain.includes('id="ack-done"'), "only after the form");
    assert.ok(page.includes('data-event="acknowledged"'));
  });

  test("with CONSOLE_TOKEN the form needs the token cookie, set by the token form from this site", async () => {
    const id = crypto.randomUUID();
    await store(lifecycle(id)[0]);
    const base = "http://console.test";
    const refused = await guarded.request(
      `${base}/incidents/${id}/ack`,
      form({ by: "Ana", note: "valve <3> shut" }),
    );
    assert.equal(refused.status, 401);
    const shown = await refused.text();
    assert.match(shown, /id="ack-by"[^>]* value="Ana"/);
    assert.match(shown, /<textarea id="ack-note"[^>]*>valve &lt;3&gt; shut<\/textarea>/);
    const wrong = await guarded.request(
      `${base}/console-token`,
      form({ token: "not-the-token-at-all", return: `/incidents/${id}` }),
    );
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get("set-cookie"), null);
    const crossSite = await guarded.request(
      `${base}/console-token`,
      form({ token: TOKEN }, { origin: "http://evil.test" }),
    );
    assert.equal(crossSite.status, 401);
    const set = await guarded.request(
      `${base}/console-token`,
      form({ token: TOKEN, return: `/incidents/${id}` }, { origin: base }),
    );
    assert.equal(set.status, 303);
    // Back to the page, which says the token was stored (it looks as before otherwise).
    assert.equal(set.headers.get("location"), `/incidents/${id}?token=stored`);
    const back = await (await guarded.request(`${base}/incidents/${id}?token=stored`)).text();
    assert.match(
      back,
      /<p class="done" role="status" id="console-token-stored" tabindex="-1">Token stored: /,
    );
    const plain = await (await guarded.request(`${base}/incidents/${id}`)).text();
    assert.ok(!plain.includes('id="console-token-stored"'), "said only on the way back");
    // The way back keeps the page's query, and never leaves this site.
    for (const [given, back] of [
      [
        "/quality?weeks=4&stream_id=line-a&sensors=25",
        "/quality?weeks=4&stream_id=line-a&sensors=25",
      ],
      ["//evil", "/"],
      ["/\\evil.test", "/"],
      ["https://evil.test/quality", "/"],
      ["/quality/../..//evil.test", "/"],
      ["/quality/../..//evil", "/"],
      ["/quality?x=<b>", "/quality?x=%3Cb%3E"],
      // Nothing a Location header cannot carry.
      ["/\u0000x", "/"],
      ["/quality?x=\u0001\u007f", "/quality?x=%01%7F"],
    ]) {
      const res = await guarded.request(
        `${base}/console-token`,
        form({ token: TOKEN, return: given }, { origin: base }),
      );
      const marked = `${back}${back.includes("?") ? "&" : "?"}token=stored`;
      assert.equal(res.headers.get("location"), marked, given);
    }
    const cookie = set.headers.get("set-cookie")!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const pair = cookie.split(";")[0];
    const forged = await guarded.request(
      `${base}/incidents/${id}/ack`,
      form({ by: "Mallory" }, { cookie: pair, "sec-fetch-site": "cross-site" }),
    );
    assert.equal(forged.status, 401);
    const ok = await guarded.request(
      `${base}/incidents/${id}/ack`,
      form({ by: "Ana" }, { cookie: pair, origin: base, "sec-fetch-site": "same-origin" }),
    );
    assert.equal(ok.status, 303);
    const [ack] = await db.sql`SELECT acked_by FROM incident_ack WHERE incident_id = ${id}`;
    assert.equal(ack.acked_by, "Ana");
  });

  test("behind an https PUBLIC_URL the console_token cookie is Secure, as the session cookie is", async () => {
    const publicUrl = "https://console.plant";
    const behindProxy = createBackendApp({
      database: db,
      consoleToken: TOKEN,
      auth: createAuth({ mode: "none", consoleToken: TOKEN, publicUrl }),
    });
    // The proxy ends TLS: the request the backend sees says http, its Host the public one.
    const res = await behindProxy.request(
      "http://console.plant/console-token",
      form({ token: TOKEN, return: "/" }, { host: "console.plant", origin: publicUrl }),
    );
    assert.equal(res.status, 303);
    const cookie = res.headers.get("set-cookie") ?? "";
    assert.match(cookie, /^console_token=/);
    assert.match(cookie, /; Secure(;|$)/);
  });

  test("the console token form limits wrong tokens as sign-in does: the 11th gets 429, each logged, the right one still stored", async () => {
    const logs: Record<string, unknown>[] = [];
    const log = createLogger({
      service: "test",
      level: "info",
      write: (line) => logs.push(JSON.parse(line)),
    });
    // Its own app: its own limiter, so no other test's wrong token counts here.
    const limited = createBackendApp({ database: db, consoleToken: TOKEN, log });
    const base = "http://console.test";
    const send = (token: string, headers: Record<string, string> = { origin: base }) =>
      limited.request(`${base}/console-token`, form({ token, return: "/quality" }, headers));
    const counted = () => logs.filter((l) => l.msg === "sign-in refused" && l.failures_in_window);
    // The right token from another site's page is refused, but no secret was wrong.
    for (let i = 0; i < 12; i++) {
      assert.equal((await send(TOKEN, { origin: "http://evil.test" })).status, 401);
    }
    // Nor is an empty form: it tried no secret.
    assert.equal((await send("")).status, 401);
    assert.equal(counted().length, 0);
    const refusedHow = logs.filter((l) => l.msg === "sign-in refused").map((l) => l.how);
    assert.deepEqual(
      new Set(refusedHow),
      new Set(["cross-site console token form", "console token form without a token"]),
    );
    assert.equal(refusedHow.length, 13);
    for (let i = 0; i < 10; i++) {
      const wrong = await send(`guess-${i}`);
      assert.equal(wrong.status, 401);
      assert.match(await wrong.text(), /<h1>Token not accepted<\/h1>/);
    }
    const refused = await send("guess-10");
    assert.equal(refused.status, 429);
    assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/);
    assert.equal(refused.headers.get("set-cookie"), null);
    assert.match(
      await refused.text(),
      /<p role="alert" id="message" tabindex="-1">too many failed sign-ins from this address: try again in \d+ s<\/p>/,
    );
    assert.equal(counted().length, 10);
    assert.ok(counted().every((l) => l.how === "console token form" && l.level === "warn"));
    assert.ok(!JSON.stringify(logs).includes("guess-"), "the guess itself is not logged");
    // Behind a reverse proxy every browser shares the address: the right token is still stored.
    const right = await send(TOKEN);
    assert.equal(right.status, 303);
    assert.match(right.headers.get("set-cookie") ?? "", /^console_token=/);
  });

  test("every console form answers a body it cannot read as a form with 400, not 500", async () => {
    const withModels = createBackendApp({
      database: db,
      // Never reached: the body is refused first.
      modelActivation: { engineUrl: "http://127.0.0.1:9" },
    });
    const id = crypto.randomUUID();
    await store(lifecycle(id)[0]);
    const broken = (boundary: string): RequestInit => ({
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: "--XYZ\r\nbroken",
    });
    for (const path of [
      `/incidents/${id}/ack`,
      `/incidents/${id}/verdict`,
      "/console-token",
      "/silences",
      `/silences/${crypto.randomUUID()}/expire`,
      "/quality/mute",
      "/models/featurewise_ocsvm/activate",
      "/models/featurewise_ocsvm/retrain",
    ]) {
      for (const boundary of ["XYZ", "other"]) {
        const res = await withModels.request(path, broken(boundary));
        assert.equal(res.status, 400, `${path} (boundary ${boundary})`);
        const text = await res.text();
        assert.match(text, /invalid_request|not a form that can be read/, path);
      }
    }
    const [{ n }] =
      await db.sql`SELECT count(*)::int AS n FROM incident_ack WHERE incident_id = ${id}`;
    assert.equal(n, 0, "nothing recorded");
  });

  test("the Overview heatmap links each cell to its incident", async () => {
    const id = crypto.randomUUID();
    await store(
      incidentAlert({
        incidentId: id,
        event: "opened",
        start: new Date(Date.now() - 60_000).toISOString(),
        sensors: [{ idx: 5150, severity: 22 }],
      }),
    );
    const page = await (await app.request("/overview?period=6h")).text();
    assert.ok(page.includes("feature_5150"));
    assert.ok(page.includes(`href="/incidents/${id}"`));
    assert.match(page, /<option value="6h" selected/);
    assert.equal((await app.request("/overview?period=1y")).status, 400);
    // Names every object inherits are no periods either (they reached the database as an
    // invalid time and could leave its connection stuck).
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      assert.equal((await app.request(`/overview?period=${name}`)).status, 400, name);
    }
    assert.equal((await app.request("/overview?period=6h")).status, 200);
  });

  test("the Health page answers when the notification outbox does not (a query waiting on a lock)", async () => {
    const stuck = createBackendApp({
      database: db,
      notifications: { status: () => new Promise(() => {}) },
    });
    // Before, the page waited on the outbox for ever.
    const page = await (await stuck.request("/status")).text();
    assert.match(
      page,
      /The notification outbox could not be read: the notification outbox did not answer within 2000 ms/,
    );
  });

  test("the Health page reads the engine server-side and says when it is unreachable", async () => {
    const unreachable = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: "http://127.0.0.1:9", timeoutMs: 500 }),
    });
    const page = await (await unreachable.request("/status")).text();
    assert.match(page, /<h1>Health<\/h1>/);
    assert.match(page, /data-ready="unreachable"/);
    const fake = createEngineMonitor({
      engineUrl: "http://engine.test",
      sampleGapMs: 10,
      fetch: async (input) => {
        const path = new URL(String(input)).pathname;
        if (path === "/health/ready") {
          return Response.json({
            status: "ready",
            model: { name: "featurewise_ocsvm", version: "2", n_features: 25000, window_size: 5 },
            execution_provider: "cpu",
            gpu: { available: false },
          });
        }
        scored += 5;
        return Response.json({
          frames: { accepted: scored, rejected: 0, duplicate: 0, scored },
          queue: { depth: 2, capacity: 100 },
          latency_ms: { count: scored, p50: 9.5, p90: 11, p99: 14, max: 20 },
          inference_ms: { count: 1, p50: 4, p99: 6, by_batch_size: {} },
          alerts: { generated: 1, delivered: 1, outbox: 0 },
          rss_bytes: 300 * 1048576,
        });
      },
    });
    let scored = 0;
    const health = await fake.read();
    assert.equal(health.ready?.execution_provider, "cpu");
    assert.equal(health.stats?.queue.depth, 2);
    assert.ok(health.frames_per_s !== null && health.frames_per_s > 0);
  });

  test("the Health page lists the engine's models, read from GET /models with the admin token", async () => {
    const token = "engine-admin-token-for-tests";
    const engine = await startEngineModelsStandIn({
      models: servedModels(HOSTILE, `rolled back ${HOSTILE}`),
      token,
    });
    try {
      const withToken = createBackendApp({
        database: db,
        engine: createEngineMonitor({ engineUrl: engine.url, adminToken: token, timeoutMs: 2000 }),
      });
      const res = await withToken.request("/status");
      assert.equal(res.status, 200);
      const page = await res.text();
      assert.ok(engine.requests.includes(`GET /models Bearer ${token}`), engine.requests.join());
      assert.ok(!engine.requests.some((r) => r.startsWith("GET /health") && r.includes(token)));
      assert.match(page, /<table id="engine-models"/);
      assert.ok(page.includes('data-active-version="2.3.0+9fa2419cba78"'));
      assert.ok(page.includes("featurewise_ocsvm@2.3.0+9fa2419cba78"));
      assert.ok(page.includes("<code>2.2.0</code> → <code>2.3.0+9fa2419cba78</code> by"));
      assert.ok(page.includes('<time datetime="2026-11-24T09:30:00.000Z">2026-11-24 09:30:00Z'));
      assert.ok(page.includes('<tr data-model="boiler">'));
      assert.ok(page.includes("boiler-*") && page.includes("(flat layout)"));
      assert.ok(!page.includes(HOSTILE), "the activation's author and reason are escaped");
      assert.ok(page.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));

      const withoutToken = createBackendApp({
        database: db,
        engine: createEngineMonitor({ engineUrl: engine.url }),
      });
      const refused = await (await withoutToken.request("/status")).text();
      assert.equal(refused.includes('<table id="engine-models"'), false);
      assert.match(refused, /id="engine-models-error"[^>]*>[^<]*HTTP 401[^<]*set ADMIN_TOKEN/);
    } finally {
      await engine.close();
    }
  });

  test("the Health page says why the models are missing: a hung, absent or odd engine", async () => {
    const hung = await startEngineModelsStandIn({ models: servedModels(), stall: true });
    try {
      const app = createBackendApp({
        database: db,
        engine: createEngineMonitor({ engineUrl: hung.url, timeoutMs: 300 }),
      });
      const res = await app.request("/status");
      assert.equal(res.status, 200);
      assert.match(await res.text(), /could not be read: no answer from the engine within 300 ms/);
    } finally {
      await hung.close();
    }
    const gone = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: "http://127.0.0.1:9", timeoutMs: 500 }),
    });
    assert.match(
      await (await gone.request("/status")).text(),
      /could not be read: engine unreachable/,
    );
    const odd = createEngineModelsReader({
      engineUrl: "http://engine.test",
      fetch: async () => Response.json({ models: [{ name: "x", layout: "zip" }] }),
    });
    const answer = await odd();
    assert.ok(
      "error" in answer && /^unexpected answer from the engine: models\.0\./.test(answer.error),
    );
    const old = createEngineModelsReader({
      engineUrl: "http://engine.test",
      fetch: async () =>
        Response.json({ error: "not_found", message: "no route /models" }, { status: 404 }),
    });
    assert.deepEqual(await old(), {
      error: "the engine has no model operations API (HTTP 404, not_found: no route /models)",
    });
  });

  test("the console serves its script, styles and uPlot's files", async () => {
    for (const [name, type] of [
      ["console.js", "text/javascript"],
      ["console.css", "text/css"],
      ["uPlot.iife.min.js", "text/javascript"],
      ["uPlot.min.css", "text/css"],
    ]) {
      const res = await app.request(`/assets/${name}`);
      assert.equal(res.status, 200, name);
      assert.match(res.headers.get("content-type")!, new RegExp(type));
      assert.ok((await res.arrayBuffer()).byteLength > 500, name);
      const again = await app.request(`/assets/${name}`, {
        headers: { "if-none-match": res.headers.get("etag")! },
      });
      assert.equal(again.status, 304);
    }
    assert.equal((await app.request("/assets/../package.json")).status, 404);
    assert.equal((await app.request("/assets/nope.js")).status, 404);
  });
});
