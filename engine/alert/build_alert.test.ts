import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { alertSchema } from "../../contracts/alert.ts";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { buildAlert } from "./build_alert.ts";

const base = {
  featureNames: defaultFeatureNames(6),
  threshold: 0.9,
  maxFeatures: 1000,
  alertId: crypto.randomUUID(),
  streamId: "line-1",
  frameTimestamp: Date.UTC(2026, 10, 24, 9),
  modelVersion: "tiny@1",
  latencyMs: 3.25,
  now: Date.UTC(2026, 10, 24, 9, 0, 1),
};

test("buildAlert returns nothing when every score is below the threshold", () => {
  const scores = new Float32Array([0.1, 0.2, 0.89, 0, 0.5, 0.3]);
  assert.equal(buildAlert({ ...base, scores, row: 0 }), undefined);
});

test("buildAlert lists anomalous features of its row by descending score", () => {
  const scores = new Float32Array([0, 0, 0, 0, 0, 0, 0.95, 0.1, 0.9, 1, 0.2, Number.NaN]);
  const alert = buildAlert({ ...base, scores, row: 1 })!;
  assert.deepEqual(
    alert.anomalous_features.map((f) => [f.feature_idx, f.feature]),
    [
      [3, "feature_3"],
      [0, "feature_0"],
      [2, "feature_2"],
    ],
  );
  assert.equal(alert.num_anomalous_features, 3);
  assert.equal(alert.max_score, 1);
  assert.equal(alert.frame_timestamp, "2026-11-24T09:00:00.000Z");
  assert.equal(alert.timestamp, "2026-11-24T09:00:01.000Z");
});

test("buildAlert caps the list but keeps the full count", () => {
  const scores = new Float32Array([0.91, 0.92, 0.93, 0.94, 0.95, 0.96]);
  const alert = buildAlert({ ...base, scores, row: 0, maxFeatures: 2 })!;
  assert.equal(alert.num_anomalous_features, 6);
  assert.deepEqual(
    alert.anomalous_features.map((f) => f.feature_idx),
    [5, 4],
  );
});

test("buildAlert output passes the alert contract", () => {
  const scores = new Float32Array([0.99, 0, 0, 0.9, 0, 0]);
  const alert = buildAlert({ ...base, scores, row: 0 })!;
  assert.deepEqual(v.parse(alertSchema, alert), alert);
});
