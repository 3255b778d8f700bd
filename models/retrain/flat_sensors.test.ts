// Flat, stuck and non-finite sensors of a training stretch, judged against the active version's typical ranges and stuck checks.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Rng } from "../signal/mod.ts";
import { FEATURES, NAME, plantFrames, trainInto } from "./_test/plant_history.ts";
import {
  describeProblem,
  sensorProblems,
  stuckDetection,
  stuckDetectionLost,
  stuckStretches,
} from "./flat_sensors.ts";

const T = 500;
const names = ["flow", "temp", "valve", "level"];

/** Sensors: flow varies, temp is stuck at 71.5, valve is constant (as it was in training), level varies. */
function stretch(edit?: (t: number, row: Float32Array) => void) {
  const rng = new Rng(5);
  const values = new Float32Array(T * 4);
  for (let t = 0; t < T; t++) {
    const row = values.subarray(t * 4, t * 4 + 4);
    row.set([100 + rng.normal(), 71.5, 1, 3 + 0.1 * rng.normal()]);
    edit?.(t, row);
  }
  return { values, nFrames: T };
}

const active = {
  n_features: 4,
  feature_names: names,
  typical: { description: "", low: [97.7, 68.2, 1, 2.77], high: [102.3, 74.9, 1, 3.23] },
};

test("sensorProblems names a sensor flat where the active version saw it vary, not one it learnt constant", () => {
  const { problems, skipped } = sensorProblems(stretch(), active);
  assert.equal(skipped, undefined);
  assert.deepEqual(
    problems.map((p) => [p.name, p.problem]),
    [["temp", "flat"]],
  );
  assert.equal(problems[0].spread, 0);
  assert.ok(Math.abs((problems[0].learnt ?? 0) - 6.7) < 1e-9);
  assert.match(describeProblem(problems[0]), /^temp \(feature 1\): flat in the training stretch/);
});

test("sensorProblems passes a stretch whose sensors vary as the active version learnt", () => {
  const working = stretch((t, row) => {
    row[1] = 71.5 + Math.sin(t / 7);
  });
  assert.deepEqual(sensorProblems(working, active).problems, []);
});

test("sensorProblems still names a flat line with 1 % odd readings in it", () => {
  const glitchy = stretch((t, row) => {
    if (t % 100 === 0) row[1] = 80;
  });
  assert.deepEqual(
    sensorProblems(glitchy, active).problems.map((p) => p.name),
    ["temp"],
  );
});

test("sensorProblems names non-finite readings, with or without a typical range", () => {
  const broken = stretch((t, row) => {
    if (t === 10) row[3] = Number.POSITIVE_INFINITY;
    if (t === 20) row[3] = Number.NaN;
  });
  const { problems } = sensorProblems(broken, active);
  const level = problems.find((p) => p.name === "level");
  assert.equal(level?.problem, "non_finite");
  assert.equal(level?.nonFinite, 2);
  assert.match(describeProblem(level!), /level \(feature 3\): 2 non-finite reading/);
  const old = sensorProblems(broken, { ...active, typical: undefined });
  assert.deepEqual(
    old.problems.map((p) => [p.name, p.problem]),
    [["level", "non_finite"]],
  );
  assert.match(old.skipped ?? "", /keeps no typical range/);
});

test("stuckStretches cuts out the frames a checked sensor holds a reading in (5 frames or more, not a stray repeat), and keeps a sensor stuck for most of the stretch", () => {
  // temp is stuck from 100 to 149 (its reading at 99 held), valve always repeats but is not checked.
  const quietOn = Uint8Array.of(1, 1, 0, 1);
  const part = stretch((t, row) => {
    row[1] = 71.5 + Math.sin(t);
    if (t >= 100 && t < 150) row[1] = 71.5 + Math.sin(99);
    // Stray repeats are not stuck: flow repeats once, level holds for 4 frames (under 5).
    if (t === 201) row[0] = 100;
    if (t === 200) row[0] = 100;
    if (t >= 300 && t < 303) row[3] = 3;
    if (t === 299) row[3] = 3;
  });
  const cut = stuckStretches(part, quietOn, names);
  assert.deepEqual(cut.sensors, [{ feature: 1, name: "temp", frames: 51, action: "left_out" }]);
  assert.equal(cut.dropped, 51);
  assert.deepEqual(
    [...cut.drop].flatMap((d, t) => (d ? [t] : [])),
    Array.from({ length: 51 }, (_, i) => 99 + i),
  );
  // temp at 71.5 in every frame: stuck for all of it, not cut out (the gate holds instead).
  const dead = stuckStretches(stretch(), quietOn, names);
  assert.deepEqual(dead.sensors, [{ feature: 1, name: "temp", frames: T, action: "kept" }]);
  assert.equal(dead.dropped, 0);
  assert.equal(stuckStretches(stretch(), Uint8Array.of(1, 0, 0, 1), names).sensors.length, 0);
});

test("stuckDetection reads which sensors a trained model checks for being stuck from its graph", async () => {
  const root = await mkdtemp(join(tmpdir(), "stuck-"));
  try {
    // feature 5 reads in steps (three changes in four exactly zero): quantised, its quiet
    // statistic is off. feature 6 repeats a reading once (a stray repeat, as float32 or 7
    // significant digits make now and then): it is still checked.
    let before = 0;
    const frames = plantFrames(1200, 1, (t, f) => {
      f[5] = t % 8 < 4 ? 1 : 2;
      if (t === 501) f[6] = before;
      before = f[6];
    });
    const { meta } = await trainInto(root, frames, true);
    const onnx = await readFile(join(root, NAME, meta.version, `${NAME}.onnx`));
    const on = stuckDetection(onnx, meta)!;
    assert.equal(on.length, FEATURES);
    assert.equal(on[5], 0);
    assert.equal(on[6], 1);
    assert.ok(on.filter((x) => x === 1).length >= FEATURES - 2, String([...on]));
    const all = Uint8Array.from({ length: FEATURES }, () => 1);
    const off = [...on].flatMap((x, f) => (x ? [] : [{ feature: f, name: meta.feature_names[f] }]));
    // Quantised: reported apart, not a stuck sensor learnt.
    assert.deepEqual(stuckDetectionLost(all, on, meta.feature_names), {
      stuck: [],
      otherwise: off,
    });
    // One that held a reading through most of the training series: a stuck sensor learnt.
    const held = [{ feature: 5, name: "feature_5", frames: 900, action: "kept" as const }];
    assert.deepEqual(stuckDetectionLost(all, on, meta.feature_names, held), {
      stuck: [{ feature: 5, name: "feature_5" }],
      otherwise: off.filter((x) => x.feature !== 5),
    });
    assert.deepEqual(stuckDetectionLost(null, on, meta.feature_names), {
      stuck: [],
      otherwise: [],
    });
    assert.equal(stuckDetection(onnx, { ...meta, statistics: ["level"] }), null);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
