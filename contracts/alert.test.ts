import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { alertInputSchema, alertSchema } from "./alert.ts";

const original = {
  timestamp: "2026-11-24T09:00:00.000Z",
  anomaly_detected: true,
  num_anomalous_features: 2,
  anomalous_features: [
    { feature_idx: 17, score: 0.97 },
    { feature_idx: 4051, score: 0.93 },
  ],
};
const ours = {
  ...original,
  alert_id: "0b6d4a52-2c4e-4d9a-9a51-3f0b0a3a1c11",
  stream_id: "default",
  frame_timestamp: "2026-11-24T08:59:59.000Z",
  max_score: 0.97,
  threshold: 0.9,
  model_version: "featurewise_ocsvm@1",
  latency_ms: 3.2,
  anomalous_features: [
    { feature_idx: 17, score: 0.97, feature: "feature_17" },
    { feature_idx: 4051, score: 0.93, feature: "feature_4051" },
  ],
};
const firstPath = (schema: typeof alertSchema | typeof alertInputSchema, input: unknown) => {
  const r = v.safeParse(schema, input);
  assert.equal(r.success, false);
  return v.getDotPath(r.issues![0]);
};

test("alert input schema accepts the original design's alert without our fields", () => {
  assert.equal(v.safeParse(alertInputSchema, original).success, true);
});

test("alert schema requires our fields on what our engine sends", () => {
  assert.equal(v.safeParse(alertSchema, ours).success, true);
  const r = v.safeParse(alertSchema, original);
  assert.equal(r.success, false);
  const paths = r.issues!.map((i) => v.getDotPath(i));
  for (const key of [
    "alert_id",
    "stream_id",
    "max_score",
    "model_version",
    "anomalous_features.0.feature",
  ]) {
    assert.ok(paths.includes(key), `${key} should be required, got ${paths.join(",")}`);
  }
});

test("alert schemas reject a missing original field with its path", () => {
  for (const key of [
    "timestamp",
    "anomaly_detected",
    "num_anomalous_features",
    "anomalous_features",
  ]) {
    const { [key as keyof typeof original]: _, ...rest } = original;
    assert.equal(firstPath(alertInputSchema, rest), key);
  }
});

test("alert schemas reject wrong types and ranges with the path", () => {
  assert.equal(
    firstPath(alertInputSchema, { ...original, anomaly_detected: "yes" }),
    "anomaly_detected",
  );
  assert.equal(firstPath(alertInputSchema, { ...original, timestamp: "noon" }), "timestamp");
  const badScore = { ...original, anomalous_features: [{ feature_idx: 1, score: 1.5 }] };
  assert.equal(firstPath(alertInputSchema, badScore), "anomalous_features.0.score");
  const badIdx = { ...original, anomalous_features: [{ feature_idx: -1, score: 0.5 }] };
  assert.equal(firstPath(alertInputSchema, badIdx), "anomalous_features.0.feature_idx");
  assert.equal(firstPath(alertInputSchema, { ...original, alert_id: "not-a-uuid" }), "alert_id");
});

test("alert schemas reject a count smaller than the listed features", () => {
  const r = v.safeParse(alertInputSchema, { ...original, num_anomalous_features: 1 });
  assert.equal(r.success, false);
  assert.match(r.issues![0].message, /num_anomalous_features/);
});
