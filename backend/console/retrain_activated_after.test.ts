// A candidate promoted under manual promotion and activated by a person afterwards: Health and its report say "active now".
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { RetrainReport, ServedModel } from "../../contracts/models_api.ts";
import {
  retrainReport,
  servedModels,
  startEngineModelsStandIn,
} from "../_test/engine_models_stand_in.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const MODEL = "featurewise_ocsvm";
const ACTIVE = "2.3.0+9fa2419cba78";
const READY = "2.4.0+0d1c2b3a4f5e";

let db: TestDatabase;
before(async () => {
  db = await testTargets()[0].open();
});
after(() => db.dispose());

/** The pump's last run promoted READY under manual promotion: not activated by the run. */
function models(): ServedModel[] {
  const [pump, boiler] = servedModels();
  const run = {
    started_at: "2026-11-24T09:30:00.000Z",
    finished_at: "2026-11-24T09:40:00.000Z",
    outcome: "decided" as const,
    decision: "promoted" as const,
    candidate_version: READY,
    activated: false,
    reasons: [],
  };
  return [
    {
      ...pump,
      versions: ["2.2.0", ACTIVE, READY],
      retrain: { every_h: 24, next_at: null, last: run, last_promoted: { ...run } },
    },
    boiler,
  ];
}

function manualReport(): RetrainReport {
  const report = retrainReport(MODEL, READY, ACTIVE, "not worse on any criterion");
  report.decision = "promoted";
  report.promote = "manual";
  report.activated = null;
  return report;
}

test("a promoted candidate a person activated after the run reads 'active now' on Health and its report", async () => {
  const engine = await startEngineModelsStandIn({
    models: models(),
    reports: { [`${MODEL}@${READY}`]: manualReport() },
  });
  try {
    const app = createBackendApp({
      database: db,
      modelActivation: { engineUrl: engine.url },
      engine: createEngineMonitor({ engineUrl: engine.url, timeoutMs: 2000 }),
    });
    const retrainCell = async () => {
      const page = await (await app.request("/status")).text();
      const row = new RegExp(`<tr data-model="${MODEL}">([\\s\\S]*?)</tr>`).exec(page)?.[1];
      assert.ok(row, "the pump's row");
      const td = /<td data-retrain="[^"]+">([\s\S]*?)<\/td>/.exec(row);
      assert.ok(td, "its retraining cell");
      return td[1].replace(/<[^>]+>/g, "");
    };
    const activatedRow = async () => {
      const res = await app.request(`/models/${MODEL}/retrains/${encodeURIComponent(READY)}`);
      assert.equal(res.status, 200);
      const dd = /<dd id="activated">([\s\S]*?)<\/dd>/.exec(await res.text());
      assert.ok(dd, "the Activated row");
      return dd[1].replace(/<[^>]+>/g, "").trim();
    };

    // Not active yet: ready, as the run left it.
    assert.match(
      await retrainCell(),
      new RegExp(`^promoted ${READY.replace(/[.+]/g, "\\$&")} \\(ready, not active\\) at `),
    );
    assert.equal(await activatedRow(), "no: ready for activation by a person");

    // A person activates it (the engine's operations API); the run's record still says not activated.
    const res = await fetch(`${engine.url}/models/${MODEL}/activate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ version: READY, by: "alice", reason: "reviewed" }),
    });
    assert.equal(res.status, 200);

    assert.match(
      await retrainCell(),
      new RegExp(`^promoted ${READY.replace(/[.+]/g, "\\$&")} \\(active now\\) at `),
    );
    assert.equal(
      await activatedRow(),
      "activated after the run (active now); the audit trail says by whom",
    );
  } finally {
    await engine.close();
  }
});
