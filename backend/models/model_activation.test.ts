// Model activation through the backend in token mode: only admins, forwarded to a real HTTP engine stand-in under the admin's name, audited; and the Health page's form.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
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
const ENGINE_ADMIN_TOKEN = "engine-admin-token-for-activation-tests";
const MODEL = "featurewise_ocsvm";
const ACTIVE = "2.3.0+9fa2419cba78";
const bearer = (who: string) => ({ authorization: `Bearer ${PEOPLE[who].token}` });
const posts = (engine: EngineModelsStandIn) => engine.requests.filter((r) => r.startsWith("POST"));

function formPost(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

for (const target of testTargets()) {
  describe(`model activation through the backend on ${target.kind}`, () => {
    let db: TestDatabase;
    let dir: string;
    let engine: EngineModelsStandIn;
    let auth: ReturnType<typeof createAuth>;
    let app: ReturnType<typeof createBackendApp>;

    /** The audit's `model.activate` events, read as an admin. */
    async function activationsAudited() {
      const res = await app.request("/api/v1/audit?action=model.activate", {
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

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "model-activation-"));
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
    after(async () => {
      await engine?.close();
      await db?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("model activation refuses anyone but an admin and asks the engine nothing", async () => {
      const path = `/api/v1/models/${MODEL}/activate`;
      const body = { version: "2.2.0", reason: "roll back" };
      const anonymous = await app.request(path, post(body));
      assert.equal(anonymous.status, 401);
      assert.equal((await anonymous.json()).error, "unauthenticated");
      for (const who of ["victor", "olga"]) {
        const res = await app.request(path, post(body, bearer(who)));
        assert.equal(res.status, 403, who);
        assert.equal((await res.json()).error, "forbidden");
      }
      assert.deepEqual(posts(engine), [], "the engine received no activation");
      assert.deepEqual(await activationsAudited(), []);
    });

    test("model activation by an admin is forwarded under the admin's name with the engine's bearer, and audited", async () => {
      const res = await app.request(
        `/api/v1/models/${MODEL}/activate`,
        post(
          { version: "2.2.0", reason: "roll back after alarms", by: "Mallory" },
          bearer("alice"),
        ),
      );
      assert.equal(res.status, 200, await res.clone().text());
      const answer = await res.json();
      assert.equal(answer.status, "active");
      assert.equal(answer.version, "2.2.0");
      assert.equal(answer.from, ACTIVE);
      assert.equal(answer.activation.by, "alice");

      assert.deepEqual(engine.activations, [
        {
          model: MODEL,
          request: { version: "2.2.0", reason: "roll back after alarms", by: "alice" },
          authorization: `Bearer ${ENGINE_ADMIN_TOKEN}`,
        },
      ]);
      const events = await activationsAudited();
      assert.equal(events.length, 1, JSON.stringify(events));
      assert.equal(events[0].action, "model.activate");
      assert.equal(events[0].target, `model:${MODEL}`);
      assert.deepEqual(events[0].actor, {
        subject: "token:alice",
        name: "alice",
        method: "token",
        role: "admin",
      });
      assert.deepEqual(events[0].detail, {
        version: "2.2.0",
        from: ACTIVE,
        reason: "roll back after alarms",
        windows_reset: false,
      });
    });

    test("model activation of an unknown version answers 404 version_not_found and audits nothing", async () => {
      const asked = engine.activations.length;
      const res = await app.request(
        `/api/v1/models/${MODEL}/activate`,
        post({ version: "9.9.9" }, bearer("alice")),
      );
      assert.equal(res.status, 404);
      assert.equal((await res.json()).error, "version_not_found");
      assert.equal(engine.activations.length, asked + 1, "the engine was asked and refused");
      assert.equal((await activationsAudited()).length, 1, "only the earlier activation");
    });

    test("model activation with the engine unreachable answers 502 engine_unreachable and audits nothing", async () => {
      const nobody = `http://127.0.0.1:${await freePort()}`;
      const cut = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: nobody, adminToken: ENGINE_ADMIN_TOKEN },
      });
      const res = await cut.request(
        `/api/v1/models/${MODEL}/activate`,
        post({ version: ACTIVE, reason: "forward again" }, bearer("alice")),
      );
      assert.equal(res.status, 502);
      assert.equal((await res.json()).error, "engine_unreachable");
      assert.equal((await activationsAudited()).length, 1);
    });

    test("model activation with text the audit cannot store is refused before the engine is asked", async () => {
      const asked = posts(engine).length;
      for (const reason of ["roll\0back", "roll \ud800 back"]) {
        const res = await app.request(
          `/api/v1/models/${MODEL}/activate`,
          post({ version: ACTIVE, reason }, bearer("alice")),
        );
        assert.equal(res.status, 400, JSON.stringify(reason));
        const body = await res.json();
        assert.equal(body.error, "invalid_request");
        assert.equal(
          body.message,
          "'reason' must be text without NUL characters or unpaired surrogates",
        );
      }
      assert.equal(posts(engine).length, asked, "the engine was not asked");
      assert.equal((await activationsAudited()).length, 1);
    });

    test("an activation the audit cannot record answers 503 not_audited, saying what the engine did", async () => {
      // The database refuses every new audit row, as one that went down after the engine answered.
      await db.sql.unsafe(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'audit refused for the test'; END $$`);
      await db.sql.unsafe(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event
        FOR EACH ROW EXECUTE FUNCTION refuse_audit()`);
      try {
        const asked = posts(engine).length;
        const res = await app.request(
          `/api/v1/models/${MODEL}/activate`,
          post({ version: "2.2.0", reason: "the same again" }, bearer("alice")),
        );
        assert.equal(res.status, 503);
        const body = await res.json();
        assert.equal(body.error, "not_audited");
        assert.ok(
          body.message.startsWith(`the engine activated ${MODEL} 2.2.0 (was 2.2.0)`),
          body.message,
        );
        assert.match(body.message, /audit could not record it/);
        assert.equal(posts(engine).length, asked + 1);
      } finally {
        await db.sql.unsafe("DROP TRIGGER refuse_audit ON audit_event");
        await db.sql.unsafe("DROP FUNCTION refuse_audit()");
      }
      assert.equal((await activationsAudited()).length, 1);
    });

    test("an engine refusing the backend's ADMIN_TOKEN is 502 for the admin, not their own 401", async () => {
      const wrong = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: engine.url, adminToken: "not-the-engine-admin-token" },
      });
      const res = await wrong.request(
        `/api/v1/models/${MODEL}/activate`,
        post({ version: ACTIVE, reason: "forward again" }, bearer("alice")),
      );
      assert.equal(res.status, 502);
      const body = await res.json();
      assert.equal(body.error, "engine_unreachable");
      assert.match(body.message, /set ADMIN_TOKEN/);
      assert.equal((await activationsAudited()).length, 1);
    });

    test("the Health page's activate form switches a version for a signed-in admin and shows it", async () => {
      const signin = await app.request(
        "/signin",
        formPost({ token: PEOPLE.alice.token, next: "/status" }),
      );
      assert.equal(signin.status, 303);
      const cookie = (signin.headers.get("set-cookie") ?? "").split(";")[0];
      assert.match(cookie, /^session=./);

      const before = await (await app.request("/status", { headers: { cookie } })).text();
      assert.match(before, /Signed in as <strong>alice<\/strong> \(admin\)/);
      assert.ok(before.includes(`action="/models/${MODEL}/activate"`), "the admin sees the form");
      assert.ok(before.includes('data-active-version="2.2.0"'));

      const res = await app.request(
        `/models/${MODEL}/activate`,
        formPost({ version: ACTIVE, reason: "forward again", by: "Mallory" }, { cookie }),
      );
      assert.equal(res.status, 303, await res.clone().text());
      // Back to the Health page, which says what the model scores with now (focused there).
      assert.equal(res.headers.get("location"), `/status?activated=${MODEL}`);
      assert.deepEqual(engine.activations.at(-1), {
        model: MODEL,
        request: { version: ACTIVE, reason: "forward again", by: "alice" },
        authorization: `Bearer ${ENGINE_ADMIN_TOKEN}`,
      });
      const page = await (
        await app.request(res.headers.get("location") ?? "", { headers: { cookie } })
      ).text();
      assert.ok(page.includes(`data-active-version="${ACTIVE}"`), "the page shows the switch");
      assert.match(
        page,
        new RegExp(
          `<p id="activate-notice" role="status" class="done" tabindex="-1">Activated: <code>${MODEL}</code> scores with <code>${ACTIVE.replace(/[.+]/g, "\\$&")}</code> now`,
        ),
      );
      const events = await activationsAudited();
      assert.equal(events.length, 2);
      assert.equal(events[0].actor.subject, "token:alice");
      assert.equal(events[0].detail.version, ACTIVE);
    });

    test("the Health page shows a viewer no activate form, and the form's route refuses one", async () => {
      const res = await app.request("/status", { headers: bearer("victor") });
      assert.equal(res.status, 200);
      const page = await res.text();
      assert.match(page, /<tr data-model="featurewise_ocsvm">/);
      assert.match(page, /needs the admin role/);
      assert.doesNotMatch(page, /action="\/models\/[^"]+\/activate"/);
      assert.doesNotMatch(page, />Activate</);

      const asked = posts(engine).length;
      const refused = await app.request(
        `/models/${MODEL}/activate`,
        formPost({ version: "2.2.0", reason: "sneaky" }, bearer("victor")),
      );
      assert.equal(refused.status, 403);
      assert.match(await refused.text(), /needs the admin role/);
      assert.equal(posts(engine).length, asked, "the engine was not asked");
    });
  });
}
