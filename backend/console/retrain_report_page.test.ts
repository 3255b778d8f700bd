// The retraining report page, rendered server-side from a real HTTP engine stand-in, and the Health page's links to it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RetrainReport, ServedModel } from "../../contracts/models_api.ts";
import {
  type EngineModelsStandIn,
  retrainReport,
  servedModels,
  startEngineModelsStandIn,
} from "../_test/engine_models_stand_in.ts";
import { freePort } from "../_test/free_port.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const HOSTILE = '<script>alert("x")</script>';
const ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;";
const MODEL = "featurewise_ocsvm";
const HELD = "2.4.0+0d1c2b3a4f5e";
const PROMOTED = "2.3.0+9fa2419cba78";

/** The stand-in's pump with a held last run and an older promotion, both versions on disk. */
function models(): ServedModel[] {
  const [pump, boiler] = servedModels();
  return [
    {
      ...pump,
      versions: ["2.2.0", PROMOTED, HELD],
      retrain: {
        every_h: 24,
        next_at: "2026-11-25T09:40:00.000Z",
        last: {
          started_at: "2026-11-24T09:30:00.000Z",
          finished_at: "2026-11-24T09:40:00.000Z",
          outcome: "decided",
          decision: "held",
          candidate_version: HELD,
          reasons: [HOSTILE],
        },
        last_promoted: {
          started_at: "2026-11-23T09:30:00.000Z",
          finished_at: "2026-11-23T09:41:00.000Z",
          outcome: "decided",
          decision: "promoted",
          candidate_version: PROMOTED,
          activated: true,
          reasons: [],
        },
      },
    },
    boiler,
  ];
}

/** The held candidate's report, with hostile text wherever the report carries words. */
function hostileReport(): RetrainReport {
  const report = retrainReport(MODEL, HELD, PROMOTED, `falseAlarmFramesPer10k ${HOSTILE}`);
  report.criteria[1].note = HOSTILE;
  report.data.excluded_read = { [HOSTILE]: 99 };
  report.data.stuck_left_out?.sensors.push({ name: HOSTILE, frames: 5, action: "left_out" });
  return report;
}

/** The promoted candidate's report as an older retraining wrote it: no cut, no left-out events, activated. */
function olderReport(): RetrainReport {
  const report = retrainReport(MODEL, PROMOTED, "2.2.0", "not worse on any criterion");
  report.decision = "promoted";
  report.activated = {
    name: MODEL,
    version: PROMOTED,
    from: "2.2.0",
    by: "retrain",
    at: "2026-11-23T09:41:00.000Z",
    reason: "promotion gate passed",
  };
  report.models.candidate = null;
  report.data.time_range = { from: null, to: null };
  delete report.data.stuck_left_out;
  delete report.data.injected.left_out;
  return report;
}

/** The page's text: inline tags dropped, the others a space, spaces collapsed. */
const textOf = (html: string) =>
  html
    .replace(/<\/?(code|strong|time|span|a)\b[^>]*>/g, "")
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim();

describe("the retraining report page", () => {
  let db: TestDatabase;
  let engine: EngineModelsStandIn;
  let app: ReturnType<typeof createBackendApp>;

  before(async () => {
    db = await testTargets()[0].open();
    engine = await startEngineModelsStandIn({
      models: models(),
      reports: { [`${MODEL}@${HELD}`]: hostileReport(), [`${MODEL}@${PROMOTED}`]: olderReport() },
    });
    app = createBackendApp({
      database: db,
      modelActivation: { engineUrl: engine.url },
      engine: createEngineMonitor({ engineUrl: engine.url, timeoutMs: 2000 }),
    });
  });
  after(async () => {
    await engine?.close();
    await db?.dispose();
  });

  const open = (version: string, model = MODEL) =>
    app.request(`/models/${encodeURIComponent(model)}/retrains/${encodeURIComponent(version)}`);

  test("the report page shows the decision, the criteria, both models and the data used, every text escaped", async () => {
    const res = await open(HELD);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const page = await res.text();
    assert.equal(page.match(/<h1[ >]/g)?.length, 1, "one h1");
    const h1 = textOf(/<h1>([\s\S]*?)<\/h1>/.exec(page)?.[1] ?? "");
    assert.equal(h1, `Retraining ${MODEL}@${HELD}: held`);
    const text = textOf(page);
    assert.ok(text.includes(`falseAlarmFramesPer10k ${ESCAPED}`), "the reason, escaped");
    assert.match(text, /Activated no /);
    assert.match(
      text,
      /falseAlarmFramesPer10k 6\.6 12 7\.6 worse – injectedRecall\.spike 0\.925 0\.8 0\.875 worse /,
    );
    assert.match(text, /stuckDetection – 0 0 pass –/);
    assert.match(
      text,
      new RegExp(
        `Active ${PROMOTED.replace(/[.+]/g, "\\$&")} Candidate ${HELD.replace(/[.+]/g, "\\$&")}`,
      ),
    );
    assert.match(text, /False-alarm windows per 10k 6\.6 12 /);
    assert.match(text, /False incidents per 10k 18\.76 18\.76 /);
    assert.match(text, /Confirmed-incident recall 1 \(2 of 2\) 1 \(2 of 2\) /);
    assert.match(text, /Injected recall: spike 0\.925 \(37 of 40\) 0\.8 \(32 of 40\) /);
    assert.match(text, /Injected recall: stuck 0\.8 \(32 of 40\) 0\.8 \(32 of 40\) /);
    assert.match(text, /History time range 2026-11-23 00:56:02Z – 2026-11-24 09:07:38Z /);
    assert.match(text, /Frames read \/ usable 2784 \/ 2685 /);
    assert.match(
      text,
      /Training stretch 2107 frames in 3 runs, 2026-11-23 00:56:02Z – 2026-11-24 08:05:24Z /,
    );
    assert.match(
      text,
      /Judged stretch \(recent, both models scored\) 537 frames, 2026-11-24 08:05:24Z/,
    );
    assert.ok(text.includes(`excluded, by why ${ESCAPED}: 99 frames `), "excluded read, escaped");
    assert.match(text, /never recorded, by why silenced: 30 frames machine_off: 12 frames /);
    assert.match(text, /operators\) 17 /);
    assert.ok(
      text.includes(
        `Stuck frames cut from training 41 frames; sensors held a reading: vib_7 (41 frames), ${ESCAPED} (5 frames)`,
      ),
    );
    assert.match(
      text,
      /Injected events 80 events \(40 per kind, seed 1\); 1 left out as within what operators judged normal on temp_3 \(up to 3\.534 std\) /,
    );
    assert.match(text, /Confirmed incidents inc-1, inc-2/);
    assert.ok(!page.includes(HOSTILE), "no hostile text unescaped");
  });

  test("the report page shows what an older report lacks as –, and an activation", async () => {
    const res = await open(PROMOTED);
    assert.equal(res.status, 200);
    const text = textOf(await res.text());
    assert.match(
      text,
      new RegExp(`Retraining ${MODEL}@${PROMOTED.replace(/[.+]/g, "\\$&")}: promoted`),
    );
    assert.match(
      text,
      /Activated yes: 2\.2\.0 → 2\.3\.0\+9fa2419cba78 by retrain at 2026-11-23 09:41:00Z/,
    );
    assert.match(text, /The candidate could not be loaded/);
    assert.match(text, /False-alarm windows per 10k 6\.6 – /);
    assert.match(text, /History time range – – – /);
    assert.match(text, /Stuck frames cut from training – /);
    assert.match(text, /seed 1\); left out: – /);
  });

  test("the report page answers the engine's refusals as a message page with their status", async () => {
    const cases: [string, string, number, string][] = [
      ["2.2.0", MODEL, 404, "No retraining report"],
      ["9.9.9", MODEL, 404, "No such version"],
      [HELD, "mixer", 404, "No such model"],
      ["a..b", MODEL, 400, "Not a model name or version"],
      [HELD, "%3Cb%3E", 400, "Not a model name or version"],
    ];
    for (const [version, model, status, title] of cases) {
      const res = await open(version, model);
      assert.equal(res.status, status, `${model}@${version}`);
      assert.match(await res.text(), new RegExp(`<h1>${title}</h1>`), `${model}@${version}`);
    }
    const cut = createBackendApp({
      database: db,
      modelActivation: { engineUrl: `http://127.0.0.1:${await freePort()}` },
    });
    const res = await cut.request(`/models/${MODEL}/retrains/${encodeURIComponent(HELD)}`);
    assert.equal(res.status, 502);
    assert.match(await res.text(), /<h1>Engine unreachable<\/h1>/);
  });

  test("the Health page links the last run's and the last promotion's candidates to their reports", async () => {
    const page = await (await app.request("/status")).text();
    const links = [
      ...page.matchAll(/<a href="([^"]+)" class="retrain-report" aria-label="([^"]+)">/g),
    ];
    assert.deepEqual(
      links.map((l) => [l[1], l[2]]),
      [
        [
          `/models/${MODEL}/retrains/${encodeURIComponent(HELD)}`,
          `Retraining report of ${MODEL}@${HELD}`,
        ],
        [
          `/models/${MODEL}/retrains/${encodeURIComponent(PROMOTED)}`,
          `Retraining report of ${MODEL}@${PROMOTED}`,
        ],
      ],
    );
    assert.ok(!page.includes(HOSTILE));
  });
});
