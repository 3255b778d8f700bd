// "Retrain now" through the backend in token mode: only admins, forwarded to a real HTTP engine stand-in under the admin's name, audited once started; and the Health page's form.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import type { Role } from "../../contracts/auth.ts";
import {
  type EngineModelsStandIn,
  servedModels,
  startEngineModelsStandIn,
} from "../_test/engine_models_stand_in.ts";
import { freePort } from "../_test/free_port.ts";
import { tokenAuth } from "../_test/token_auth.ts";
import { post } from "../alerts/_fixtures.ts";
import { createBackendApp } from "../app.ts";
import type { createAuth } from "../auth/auth.ts";
import { createEngineMonitor } from "../console/engine_monitor.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";

const PEOPLE: Record<string, { role: Role; token: string }> = {
  victor: { role: "viewer", token: "victor-token-0123456789" },
  olga: { role: "operator", token: "olga-token-0123456789" },
  alice: { role: "admin", token: "alice-token-0123456789" },
};
const ENGINE_ADMIN_TOKEN = "engine-admin-token-for-retrain-tests";
const MODEL = "featurewise_ocsvm";
const PATH = `/api/v1/models/${MODEL}/retrain`;
const HOSTILE = '<script>alert("x")</script>';
const bearer = (who: string) => ({ authorization: `Bearer ${PEOPLE[who].token}` });

function formPost(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

for (const target of testTargets()) {
  describe(`retrain now through the backend on ${target.kind}`, () => {
    let db: TestDatabase;
    let dir: string;
    let engine: EngineModelsStandIn;
    let auth: ReturnType<typeof createAuth>;
    let app: ReturnType<typeof createBackendApp>;

    /** The audit's `model.retrain` events, read as an admin. */
    async function retrainsAudited() {
      const res = await app.request("/api/v1/audit?action=model.retrain", {
        headers: bearer("alice"),
      });
      assert.equal(res.status, 200);
      return (await res.json()).events as {
        action: string;
        target: string;
        actor: Record<string, string>;
        detail: Record<string, unknown>;
      }[];
    }

    /** A session cookie for `who`, from the sign-in form. */
    async function signIn(who: string) {
      const res = await app.request(
        "/signin",
        formPost({ token: PEOPLE[who].token, next: "/status" }),
      );
      assert.equal(res.status, 303);
      return (res.headers.get("set-cookie") ?? "").split(";")[0];
    }

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "model-retrain-"));
      auth = await tokenAuth(dir, PEOPLE);
      engine = await startEngineModelsStandIn({
        models: servedModels(),
        token: ENGINE_ADMIN_TOKEN,
      });
      app = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: engine.url, adminToken: ENGINE_ADMIN_TOKEN },
        engine: createEngineMonitor({
          engineUrl: engine.url,
          adminToken: ENGINE_ADMIN_TOKEN,
          timeoutMs: 2000,
        }),
      });
    });
    // Each test starts with no run in progress.
    afterEach(() => engine.finishRetraining());
    after(async () => {
      await engine?.close();
      await db?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("retrain now refuses anyone but an admin and asks the engine nothing", async () => {
      const anonymous = await app.request(PATH, post({ reason: "moved" }));
      assert.equal(anonymous.status, 401);
      assert.equal((await anonymous.json()).error, "unauthenticated");
      for (const who of ["victor", "olga"]) {
        const res = await app.request(PATH, post({ reason: "moved" }, bearer(who)));
        assert.equal(res.status, 403, who);
        assert.equal((await res.json()).error, "forbidden");
      }
      assert.deepEqual(engine.retrains, [], "the engine received no request");
      assert.deepEqual(await retrainsAudited(), []);
    });

    test("retrain now by an admin is forwarded under the admin's name with the engine's bearer, answered 202 and audited", async () => {
      const res = await app.request(
        PATH,
        post({ reason: "operating point moved", by: "Mallory" }, bearer("alice")),
      );
      assert.equal(res.status, 202, await res.clone().text());
      const answer = await res.json();
      assert.equal(answer.status, "started");
      assert.equal(answer.model, MODEL);
      assert.equal(answer.run.outcome, "running");
      assert.equal(answer.run.requested.by, "alice");
      assert.deepEqual(engine.retrains, [
        {
          model: MODEL,
          request: { reason: "operating point moved", by: "alice" },
          authorization: `Bearer ${ENGINE_ADMIN_TOKEN}`,
        },
      ]);
      const events = await retrainsAudited();
      assert.equal(events.length, 1, JSON.stringify(events));
      assert.equal(events[0].action, "model.retrain");
      assert.equal(events[0].target, `model:${MODEL}`);
      assert.deepEqual(events[0].actor, {
        subject: "token:alice",
        name: "alice",
        method: "token",
        role: "admin",
      });
      assert.deepEqual(events[0].detail, {
        reason: "operating point moved",
        started_at: answer.run.started_at,
      });
    });

    test("the engine's refusals pass through with their code and nothing is audited", async () => {
      const audited = (await retrainsAudited()).length;
      // No body at all is a request without a reason.
      const first = await app.request(PATH, { method: "POST", headers: bearer("alice") });
      assert.equal(first.status, 202, await first.clone().text());
      const running = await app.request(PATH, post({}, bearer("alice")));
      assert.equal(running.status, 409);
      const body = await running.json();
      assert.equal(body.error, "retrain_running");
      assert.match(
        body.message,
        /^the engine refused: a retraining of featurewise_ocsvm is running/,
      );
      engine.finishRetraining();
      const unknown = await app.request(
        "/api/v1/models/no-such-model/retrain",
        post({}, bearer("alice")),
      );
      assert.equal(unknown.status, 404);
      assert.equal((await unknown.json()).error, "model_not_found");
      const flat = await app.request("/api/v1/models/boiler/retrain", post({}, bearer("alice")));
      assert.equal(flat.status, 409);
      assert.equal((await flat.json()).error, "retrain_unavailable");
      assert.equal((await retrainsAudited()).length, audited + 1, "only the run that started");
    });

    test("a body off the contract is refused by the backend and the engine is not asked", async () => {
      const asked = engine.retrains.length;
      for (const [body, code] of [
        ["{nope", "invalid_json"],
        [JSON.stringify({ reason: 7 }), "invalid_request"],
        [JSON.stringify({ reason: "x", version: "1" }), "invalid_request"],
      ]) {
        const res = await app.request(PATH, {
          method: "POST",
          headers: { "content-type": "application/json", ...bearer("alice") },
          body,
        });
        assert.equal(res.status, 400, body);
        assert.equal((await res.json()).error, code);
      }
      assert.equal(engine.retrains.length, asked);
    });

    test("retrain now with the engine unreachable answers 502 engine_unreachable and audits nothing", async () => {
      const audited = (await retrainsAudited()).length;
      const nobody = `http://127.0.0.1:${await freePort()}`;
      const cut = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: nobody, adminToken: ENGINE_ADMIN_TOKEN },
      });
      const res = await cut.request(PATH, post({ reason: "x" }, bearer("alice")));
      assert.equal(res.status, 502);
      assert.equal((await res.json()).error, "engine_unreachable");
      const wrong = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: engine.url, adminToken: "not-the-engine-admin-token" },
      });
      const refused = await wrong.request(PATH, post({ reason: "x" }, bearer("alice")));
      assert.equal(refused.status, 502);
      assert.match((await refused.json()).message, /set ADMIN_TOKEN/);
      assert.equal((await retrainsAudited()).length, audited);
    });

    test("the Health page's Retrain now form is labelled, starts a run for a signed-in admin, shows it running, and says when one already runs", async () => {
      const cookie = await signIn("alice");
      const before = await (await app.request("/status", { headers: { cookie } })).text();
      assert.ok(before.includes(`action="/models/${MODEL}/retrain"`), "the admin sees the form");
      assert.ok(before.includes(`aria-label="Retrain now: ${MODEL}"`));
      assert.ok(!before.includes('aria-label="Retrain now: boiler"'), "not for a flat model");
      assert.match(before, /not scheduled, runs when asked for/);

      const res = await app.request(
        `/models/${MODEL}/retrain`,
        formPost({ reason: "moved", by: "Mallory" }, { cookie }),
      );
      assert.equal(res.status, 303, await res.clone().text());
      assert.equal(res.headers.get("location"), `/status?retrain=${MODEL}`);
      assert.deepEqual(engine.retrains.at(-1), {
        model: MODEL,
        request: { reason: "moved", by: "alice" },
        authorization: `Bearer ${ENGINE_ADMIN_TOKEN}`,
      });
      const page = await (
        await app.request(res.headers.get("location") as string, { headers: { cookie } })
      ).text();
      assert.match(
        page,
        /<p id="retrain-notice" role="status"[^>]*>Retraining of <code>featurewise_ocsvm<\/code> started/,
      );
      assert.match(page, /<td data-retrain="running">/);
      assert.match(page, /<strong>running<\/strong> since/);
      assert.match(page, /\(asked for by <strong><bdi>alice<\/bdi><\/strong>: <bdi>moved<\/bdi>\)/);

      // Pressed again while it runs: the engine's answer, on a page of its own.
      const again = await app.request(`/models/${MODEL}/retrain`, formPost({}, { cookie }));
      assert.equal(again.status, 409);
      const said = await again.text();
      assert.match(said, /<h1>Already retraining<\/h1>/);
      assert.match(said, /a retraining of featurewise_ocsvm is running; one runs at a time/);
      assert.equal((await retrainsAudited()).at(0)?.detail.reason, "moved");
    });

    test("the console's answers are escaped, and a notice names only a model", async () => {
      const cookie = await signIn("alice");
      const hostile = await app.request(
        `/models/${encodeURIComponent(HOSTILE)}/retrain`,
        formPost({}, { cookie }),
      );
      assert.equal(hostile.status, 400);
      const page = await hostile.text();
      assert.ok(!page.includes(HOSTILE), "the refusal is escaped");
      assert.ok(page.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
      assert.match(page, /<h1>Not started<\/h1>/);
      const status = await (
        await app.request(`/status?retrain=${encodeURIComponent(HOSTILE)}`, { headers: { cookie } })
      ).text();
      assert.ok(!status.includes("retrain-notice") && !status.includes(HOSTILE));
      // A well-formed name of no model the engine serves: no notice either.
      const unknown = await (
        await app.request("/status?retrain=no_such_model", { headers: { cookie } })
      ).text();
      assert.ok(!unknown.includes("retrain-notice"), "no notice for a model not served");
    });

    test("the Health page shows an operator and a viewer no Retrain now form, and the route refuses them", async () => {
      for (const who of ["olga", "victor"]) {
        const res = await app.request("/status", { headers: bearer(who) });
        assert.equal(res.status, 200);
        const page = await res.text();
        assert.match(page, /<tr data-model="featurewise_ocsvm">/);
        assert.doesNotMatch(page, /action="\/models\/[^"]+\/retrain"/, who);
        assert.doesNotMatch(page, />Retrain now</, who);
        const asked = engine.retrains.length;
        const refused = await app.request(`/models/${MODEL}/retrain`, formPost({}, bearer(who)));
        assert.equal(refused.status, 403, who);
        assert.match(await refused.text(), /needs the admin role/);
        assert.equal(engine.retrains.length, asked, "the engine was not asked");
      }
    });
  });
}
