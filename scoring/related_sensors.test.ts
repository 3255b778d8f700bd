import assert from "node:assert/strict";
import { test } from "node:test";
import { faultKind } from "./fault_kind.ts";
import { type CrossSubspace, relatedSensors, standardisedDeviation } from "./related_sensors.ts";

// A small plant: two groups of sensors each driven by one latent factor (0..3 and 4..7), two
// sensors of their own (8, 9). The subspace is the factors' normalised loadings.
const F = 10;
const loadings = [
  [0.9, 0.8, 0.7, 0.6, 0, 0, 0, 0, 0, 0],
  [0, 0, 0, 0, 0.5, 0.9, 0.4, 0.7, 0, 0],
];
function subspace(): CrossSubspace {
  const basis = new Float32Array(F * 2);
  for (const [c, col] of loadings.entries()) {
    const norm = Math.hypot(...col);
    for (let f = 0; f < F; f++) basis[f * 2 + c] = col[f] / norm;
  }
  return {
    nFeatures: F,
    cols: 2,
    basis,
    loc: new Float32Array(F).fill(10),
    invScale: new Float32Array(F).fill(2),
  };
}

test("relatedSensors names the sensors of the flagged sensor's own group, by how much its reconstruction leans on them", () => {
  const related = relatedSensors(subspace(), 0, 3);
  assert.deepEqual(
    related.map((r) => r.feature_idx),
    [1, 2, 3],
  );
  // One factor drives the group: the subspace ties them as one.
  for (const r of related) assert.ok(Math.abs(r.weight - 1) < 1e-6, `weight ${r.weight}`);
  assert.deepEqual(
    relatedSensors(subspace(), 0, 9).map((r) => r.feature_idx),
    [1, 2, 3],
    "sensors of the other group do not lean on it at all",
  );
  assert.deepEqual(relatedSensors(subspace(), 8, 3), [], "a sensor outside the subspace has none");
});

test("relatedSensors and standardisedDeviation show a broken relation: one sensor moved alone", () => {
  const sub = subspace();
  // Sensor 5 shifted by 4 units while its partners stayed at their training location.
  const frame = new Float32Array(F).fill(10);
  frame[5] = 14;
  const moved = (j: number) => standardisedDeviation(sub, j, [frame[j], frame[j], frame[j]]);
  assert.equal(moved(5), 8, "4 units at a scale of 0.5: 8 standard deviations");
  const related = relatedSensors(sub, 5, 3).map((p) => ({ ...p, moved: moved(p.feature_idx) }));
  assert.deepEqual(
    related.map((r) => r.feature_idx),
    [7, 4, 6],
  );
  assert.ok(
    related.every((r) => r.moved === 0),
    "its partners did not move",
  );
  const far = [10, 10, 10, 10, 30];
  const typical = { low: 9.5, high: 10.5 };
  assert.equal(faultKind([{ readings: far, typical, related }]), "sensor");
  // The same reading with a partner that moved with it: the process moved.
  const echoed = related.map((r, i) => (i === 0 ? { ...r, moved: 6 } : r));
  assert.equal(faultKind([{ readings: far, typical, related: echoed }]), "process");
});

test("standardisedDeviation gives a window's farthest reading, signed, less a running level", () => {
  assert.equal(standardisedDeviation(subspace(), 0, [112, 112], 100), 4);
  assert.equal(standardisedDeviation(subspace(), 0, [11, 7, 12]), -6, "a swing down counts");
});
