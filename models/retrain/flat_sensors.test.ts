// Flat and non-finite sensors of a training stretch, judged against the active version's typical ranges.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../signal/mod.ts";
import { describeProblem, sensorProblems } from "./flat_sensors.ts";

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
