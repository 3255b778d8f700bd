// The Health page shows each model's scheduled retraining as the engine's GET /models reports it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ServedModel } from "../../contracts/models_api.ts";
import { servedModels, startEngineModelsStandIn } from "../_test/engine_models_stand_in.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const HOSTILE = '<script>alert("x")</script>';

let db: TestDatabase;
before(async () => {
  db = await testTargets()[0].open();
});
after(() => db.dispose());

/** The stand-in's two models with a retraining schedule each, and a third without one. */
function withRetraining(): ServedModel[] {
  const [pump, boiler] = servedModels();
  return [
    {
      ...pump,
      retrain: {
        every_h: 24,
        next_at: "2026-11-25T09:40:00.000Z",
        last: {
          started_at: "2026-11-24T09:30:00.000Z",
          finished_at: "2026-11-24T09:40:00.000Z",
          outcome: "decided",
          decision: "held",
          candidate_version: "2.4.0+0d1c2b3a4f5e",
          reasons: ["falseAlarmFramesPer10k: 12 > 7.6"],
        },
        last_promoted: {
          started_at: "2026-11-23T09:30:00.000Z",
          finished_at: "2026-11-23T09:41:00.000Z",
          outcome: "decided",
          decision: "promoted",
          candidate_version: "2.3.0+9fa2419cba78",
          activated: true,
          reasons: [],
        },
      },
    },
    {
      ...boiler,
      retrain: {
        every_h: 0.5,
        next_at: null,
        last: {
          started_at: "2026-11-24T09:30:00.000Z",
          finished_at: "2026-11-24T09:30:02.000Z",
          outcome: "failed",
          reasons: [],
          error: `the retraining process exited 1: ${HOSTILE}`,
        },
      },
    },
    { ...boiler, name: "mixer", retrain: undefined },
  ];
}

test("the Health page shows the last scheduled retraining per model, failures included", async () => {
  const engine = await startEngineModelsStandIn({ models: withRetraining() });
  try {
    const app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: engine.url, timeoutMs: 2000 }),
    });
    const res = await app.request("/status");
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.match(page, /<th scope="col">Retraining<\/th>/);
    const cell = (model: string) => {
      const row = new RegExp(`<tr data-model="${model}">([\\s\\S]*?)</tr>`).exec(page)?.[1];
      assert.ok(row, `row of ${model}`);
      const td = /<td data-retrain="([^"]+)">([\s\S]*?)<\/td>/.exec(row);
      assert.ok(td, `retraining cell of ${model}`);
      return { outcome: td[1], text: td[2].replace(/<[^>]+>/g, "") };
    };
    const pump = cell("featurewise_ocsvm");
    assert.equal(pump.outcome, "decided");
    assert.equal(
      pump.text,
      "held 2.4.0+0d1c2b3a4f5e at 2026-11-24 09:40:00Z: falseAlarmFramesPer10k: 12 &gt; 7.6; " +
        "last promoted 2.3.0+9fa2419cba78 at 2026-11-23 09:41:00Z; every 24 h, next at 2026-11-25 09:40:00Z",
    );
    const boiler = cell("boiler");
    assert.equal(boiler.outcome, "failed");
    assert.match(boiler.text, /^failed at 2026-11-24 09:30:02Z: the retraining process exited 1: /);
    assert.ok(!page.includes(HOSTILE), "the error is escaped");
    assert.match(page, /class="error">failed at/);
    assert.deepEqual(cell("mixer"), { outcome: "off", text: "off" });
  } finally {
    await engine.close();
  }
});

test("the Health page says when the registry names a version that is not scoring, and why", async () => {
  const [pump, boiler] = servedModels();
  const engine = await startEngineModelsStandIn({
    models: [
      {
        ...pump,
        registry_pointer: {
          version: "3.0.0+5e5e5e5e5e5e",
          following: "refused",
          error: `it has other features ${HOSTILE}`,
        },
      },
      boiler,
    ],
  });
  try {
    const app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: engine.url, timeoutMs: 2000 }),
    });
    const page = await (await app.request("/status")).text();
    const note = /<p class="error" data-registry-pointer="refused">([\s\S]*?)<\/p>/.exec(page);
    assert.ok(note, "the note beside the scoring version");
    assert.match(
      note[1].replace(/<[^>]+>/g, ""),
      /^The registry names 3\.0\.0\+5e5e5e5e5e5e: refused, so the version above goes on scoring until the pointer moves: it has other features &lt;script&gt;/,
    );
    assert.ok(!page.includes(HOSTILE), "the engine's error is escaped");
    assert.equal(
      page.match(/data-registry-pointer=/g)?.length,
      1,
      "only where the pointer differs",
    );
  } finally {
    await engine.close();
  }
});

test("Retrain now is named after what it shows, then its model, and its notice can take the focus", async () => {
  const engine = await startEngineModelsStandIn({ models: withRetraining() });
  try {
    const app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: engine.url, timeoutMs: 2000 }),
      modelActivation: { engineUrl: engine.url },
    });
    const page = await (await app.request("/status")).text();
    const buttons = [
      ...page.matchAll(/<button type="submit" aria-label="([^"]*)">Retrain now<\/button>/g),
    ].map((m) => m[1]);
    // The visible words first (WCAG 2.5.3: a speech user says "Retrain now").
    assert.ok(buttons.includes("Retrain now: featurewise_ocsvm"), buttons.join(" | "));
    for (const name of buttons) assert.match(name, /^Retrain now: /);
    // The console's script focuses a status message made focusable for it.
    const started = await (await app.request("/status?retrain=featurewise_ocsvm")).text();
    assert.match(started, /<p id="retrain-notice" role="status" class="done" tabindex="-1">/);
  } finally {
    await engine.close();
  }
});
