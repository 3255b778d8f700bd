// A retraining's report through the backend in token mode: any signed-in role reads it, forwarded to a real HTTP engine stand-in with the engine's bearer, its refusals passed through.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Role } from "../../contracts/auth.ts";
import {
  type EngineModelsStandIn,
  retrainReport,
  servedModels,
  startEngineModelsStandIn,
} from "../_test/engine_models_stand_in.ts";
import { freePort } from "../_test/free_port.ts";
import { tokenAuth } from "../_test/token_auth.ts";
import { createBackendApp } from "../app.ts";
import type { createAuth } from "../auth/auth.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";

const PEOPLE: Record<string, { role: Role; token: string }> = {
  victor: { role: "viewer", token: "victor-token-0123456789" },
  alice: { role: "admin", token: "alice-token-0123456789" },
};
const ENGINE_ADMIN_TOKEN = "engine-admin-token-for-report-tests";
const MODEL = "featurewise_ocsvm";
// servedModels(): 2.2.0 was retrained into 2.3.0+9fa2419cba78, whose report the stand-in holds.
const CANDIDATE = "2.3.0+9fa2419cba78";
const path = (version: string, model = MODEL) =>
  `/api/v1/models/${encodeURIComponent(model)}/retrains/${encodeURIComponent(version)}`;
const bearer = (who: string) => ({ authorization: `Bearer ${PEOPLE[who].token}` });

for (const target of testTargets()) {
  describe(`retraining reports through the backend on ${target.kind}`, () => {
    let db: TestDatabase;
    let dir: string;
    let engine: EngineModelsStandIn;
    let app: ReturnType<typeof createBackendApp>;
    let auth: ReturnType<typeof createAuth>;
    const report = retrainReport(MODEL, CANDIDATE, "2.2.0");

    before(async () => {
      db = await target.open();
      dir = await mkdtemp(join(tmpdir(), "model-report-"));
      auth = await tokenAuth(dir, PEOPLE);
      engine = await startEngineModelsStandIn({
        models: servedModels(),
        token: ENGINE_ADMIN_TOKEN,
        reports: {
          [`${MODEL}@${CANDIDATE}`]: report,
          // A report off the contract: the engine answers 422.
          [`${MODEL}@2.2.0`]: { ...report, decision: "maybe" },
        },
      });
      app = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: engine.url, adminToken: ENGINE_ADMIN_TOKEN },
      });
    });
    after(async () => {
      await engine?.close();
      await db?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    test("a viewer reads the report, forwarded with the engine's bearer and answered as stored", async () => {
      const asked = engine.requests.length;
      const res = await app.request(path(CANDIDATE), { headers: bearer("victor") });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), report);
      assert.deepEqual(engine.requests.slice(asked), [
        `GET /models/${MODEL}/retrains/${encodeURIComponent(CANDIDATE)} Bearer ${ENGINE_ADMIN_TOKEN}`,
      ]);
    });

    test("reading a report without an identity is 401 and asks the engine nothing", async () => {
      const asked = engine.requests.length;
      const res = await app.request(path(CANDIDATE));
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error, "unauthenticated");
      assert.equal(engine.requests.length, asked);
    });

    test("the engine's refusals pass through with their status and code", async () => {
      const cases: [string, string, number, string][] = [
        ["unknown model", path(CANDIDATE, "mixer"), 404, "model_not_found"],
        ["unknown version", path("9.9.9"), 404, "version_not_found"],
        ["off-contract report", path("2.2.0"), 422, "report_invalid"],
      ];
      for (const [what, url, status, code] of cases) {
        const res = await app.request(url, { headers: bearer("alice") });
        assert.equal(res.status, status, what);
        assert.equal((await res.json()).error, code, what);
      }
      // An engine holding no report for the version.
      const bare = await startEngineModelsStandIn({
        models: servedModels(),
        token: ENGINE_ADMIN_TOKEN,
      });
      try {
        const other = createBackendApp({
          database: db,
          auth,
          modelActivation: { engineUrl: bare.url, adminToken: ENGINE_ADMIN_TOKEN },
        });
        const res = await other.request(path(CANDIDATE), { headers: bearer("victor") });
        assert.equal(res.status, 404);
        assert.equal((await res.json()).error, "report_not_found");
      } finally {
        await bare.close();
      }
    });

    test("a version that is no safe path segment is 400 and the engine is not asked", async () => {
      const asked = engine.requests.length;
      const res = await app.request(path("../ACTIVE.json"), { headers: bearer("victor") });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, "invalid_request");
      assert.equal(engine.requests.length, asked);
    });

    test("reading a report with the engine unreachable or refusing the backend's token answers 502 engine_unreachable", async () => {
      const nobody = `http://127.0.0.1:${await freePort()}`;
      const cut = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: nobody, adminToken: ENGINE_ADMIN_TOKEN },
      });
      const res = await cut.request(path(CANDIDATE), { headers: bearer("victor") });
      assert.equal(res.status, 502);
      assert.equal((await res.json()).error, "engine_unreachable");
      const wrong = createBackendApp({
        database: db,
        auth,
        modelActivation: { engineUrl: engine.url, adminToken: "not-the-engine-admin-token" },
      });
      const refused = await wrong.request(path(CANDIDATE), { headers: bearer("victor") });
      assert.equal(refused.status, 502);
      assert.match((await refused.json()).message, /set ADMIN_TOKEN/);
    });
  });
}
