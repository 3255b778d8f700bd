// The real-data evaluation on the published files in ../shared/datasets: `npm run test:real`.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSkab, loadTep } from "./real/datasets.ts";
import { type IncidentSpan, incidentSettings } from "./real/incidents.ts";
import { ours } from "./real/ours.ts";
import { hotellingT2 } from "./real/peers.ts";
import { runDetector, skabTasks, summariseMethod } from "./real/protocol.ts";

// The datasets live beside the project, never inside it (CI has them at the same place).
const DATASETS = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "shared",
  "datasets",
);

describe("dataset loaders on the published files", () => {
  it("read SKAB's 34 runs as published", async () => {
    const runs = await loadSkab(join(DATASETS, "skab"), { limitRows: 450 });
    assert.equal(runs.length, 34);
    assert.equal(runs[0].name, "valve1/0");
    assert.equal(runs[2].name, "valve1/2");
    assert.equal(runs.at(-1)?.name, "other/14");
    for (const r of runs) {
      assert.equal(r.featureNames.length, 8);
      assert.equal(r.rows, 450);
      assert.equal(r.trainRows, 400);
    }
    assert.deepEqual(runs[0].featureNames.slice(0, 2), ["Accelerometer1RMS", "Accelerometer2RMS"]);
    // valve1/0.csv, first data row: 0.0265878;0.0401113;1.3302;...
    assert.equal(runs[0].values[0], 0.0265878);
    assert.equal(runs[0].values[2], 1.3302);
    // other/2's anomaly starts at row 104, inside the training rows (see the datasets README).
    const o2 = runs.find((r) => r.name === "other/2")!;
    assert.equal(o2.label.indexOf(1), 104);
  });

  it("read TEP with d00 transposed and faults from sample 160", async () => {
    const tep = await loadTep(join(DATASETS, "tep"), { limitRows: 200 });
    assert.equal(tep.featureNames.length, 52);
    assert.equal(tep.train.rows, 200);
    // d00.dat stores variable 1 on its first line: samples 0 and 1 of XMEAS_1, then XMEAS_2.
    assert.equal(tep.train.values[0], 0.24987);
    assert.equal(tep.train.values[52], 0.25118);
    assert.equal(tep.train.values[1], 3642.6);
    assert.equal(tep.tests.length, 22);
    assert.equal(tep.tests[0].name, "d00_te");
    assert.equal(tep.tests[0].label.indexOf(1), -1);
    assert.equal(tep.tests[5].name, "d05_te");
    assert.equal(tep.tests[5].label.indexOf(1), 160);
  });
});

describe("real-data protocol", () => {
  it("reproduces the leaderboard's T-squared row on SKAB (0.66 / 19.21 % / 42.6 %)", async () => {
    const tasks = skabTasks(await loadSkab(join(DATASETS, "skab")));
    const s = summariseMethod(await runDetector(hotellingT2(), tasks), [0.05]);
    assert.equal(Math.round(s.default.f1 * 100) / 100, 0.66);
    assert.equal(Math.round(s.default.far * 1e4) / 100, 19.21);
    assert.equal(Math.round(s.default.mar * 1e3) / 10, 42.6);
    // The budget spends at most 5 % of the normal frames.
    assert.ok(s.budgets["5%"].far <= 0.05);
  });

  it("runs our model through ONNX Runtime on a slice, windows and incidents in stream order", async () => {
    const runs = (await loadSkab(join(DATASETS, "skab"), { limitRows: 520 })).slice(0, 2);
    const spans = new Map<string, IncidentSpan[]>();
    const results = await runDetector(ours(), skabTasks(runs), {
      periodMs: 1000,
      settings: incidentSettings({}),
      spans,
    });
    assert.equal(results.length, 2);
    for (const r of results) {
      assert.equal(r.alarm.length, 120);
      assert.equal(r.label.length, 120);
      // The first test row has a full window (training rows fill it): a score for every row.
      assert.ok(r.score.every((x) => Number.isFinite(x)));
    }
    // Every incident is in a run it was fed and opens within the test rows.
    for (const [run, list] of spans) {
      assert.ok(runs.some((r) => r.name === run));
      for (const s of list) assert.ok(s.openedRow >= 400 && s.openedRow < 520);
    }
  });
});
