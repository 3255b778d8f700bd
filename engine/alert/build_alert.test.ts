import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { originalMainServerAlertDto } from "../../contracts/_original_main_server_dto.ts";
import { alertSchema } from "../../contracts/alert.ts";
import { defaultFeatureNames } from "../../contracts/model.ts";
import type { IncidentEvent, SensorEvidence } from "../../scoring/incident_tracker.ts";
import { buildFrameAlert, buildIncidentAlert } from "./build_alert.ts";

const context = {
  featureNames: defaultFeatureNames(6),
  statistics: ["level", "dynamics", "quiet"],
  typical: { low: [0, 1, 2, 3, 4, 5], high: [10, 11, 12, 13, 14, 15] },
  threshold: 0.9,
  modelName: "featurewise_ocsvm",
  modelVersion: "tiny@1",
};
const at = Date.UTC(2026, 10, 24, 9);
const evidence = (f: number, severity: number, statistic = 0): SensorEvidence => ({
  feature_idx: f,
  score: Math.min(1, severity / 10),
  severity,
  statistic,
  window: [1, 2, 3, 4, Math.fround(20.1)],
});

test("buildFrameAlert carries each sensor's evidence and passes the contract", () => {
  const alert = buildFrameAlert(context, {
    streamId: "line-1",
    frameTimestamp: at,
    count: 3,
    sensors: [evidence(4, 12, 1), evidence(1, 9.5, 7)],
    latencyMs: 3.25,
    now: at + 1000,
  });
  assert.deepEqual(v.safeParse(alertSchema, alert).issues, undefined);
  assert.equal(alert.num_anomalous_features, 3, "the count covers unlisted sensors");
  const [first, second] = alert.anomalous_features;
  assert.equal(first.feature, "feature_4");
  assert.equal(first.value, 20.1, "float32 readings print as the sensor sent them");
  assert.deepEqual(first.window, [1, 2, 3, 4, 20.1]);
  assert.deepEqual(first.typical, { low: 4, high: 14 });
  assert.equal(first.statistic, "dynamics");
  assert.equal(second.statistic, "score", "an index outside the names falls back to score");
  assert.equal(alert.max_severity, 12);
  assert.equal(alert.max_score, 1);
  assert.equal(alert.incident_id, undefined);
});

test("buildFrameAlert derives the same alert id for the same window, another for the next", () => {
  const input = { streamId: "s", count: 1, sensors: [evidence(0, 9)], latencyMs: 1, now: at };
  const a = buildFrameAlert(context, { ...input, frameTimestamp: at });
  const b = buildFrameAlert(context, { ...input, frameTimestamp: at, now: at + 5 });
  const c = buildFrameAlert(context, { ...input, frameTimestamp: at + 1000 });
  assert.equal(a.alert_id, b.alert_id);
  assert.notEqual(a.alert_id, c.alert_id);
});

test("buildIncidentAlert marks a resolved incident not anomalous and keeps its fields", () => {
  const event: IncidentEvent = {
    event: "resolved",
    incidentId: "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f",
    streamId: "line-1",
    startedAt: at,
    timestamp: at + 60_000,
    sensorCount: 2,
    sensors: [evidence(2, 11, 2), evidence(3, 9)],
    maxSeverity: 11,
    reason: "quiet",
  };
  const alert = buildIncidentAlert({ ...context, typical: undefined }, event, {
    latencyMs: 0,
    now: at + 61_000,
  });
  assert.deepEqual(v.safeParse(alertSchema, alert).issues, undefined);
  assert.equal(alert.anomaly_detected, false);
  assert.equal(alert.event, "resolved");
  assert.equal(alert.incident_started_at, new Date(at).toISOString());
  assert.equal(alert.frame_timestamp, new Date(at + 60_000).toISOString());
  assert.equal(alert.anomalous_features[0].statistic, "quiet");
  assert.equal(alert.anomalous_features[0].typical, undefined, "no typical range without metadata");
  const opened = buildIncidentAlert(
    context,
    { ...event, event: "opened" },
    { latencyMs: 1, now: 0 },
  );
  assert.equal(opened.anomaly_detected, true);
  assert.notEqual(opened.alert_id, alert.alert_id);
});

test("a sensor judged against a running level shows its typical range around that level", () => {
  const alert = buildFrameAlert(context, {
    streamId: "line-1",
    frameTimestamp: at,
    count: 1,
    sensors: [{ ...evidence(2, 12), level: 70.25 }],
    latencyMs: 1,
    now: at,
  });
  const [f] = alert.anomalous_features;
  // The metadata's range (2..12) is of the deviation from the level.
  assert.deepEqual(f.typical, { low: 72.25, high: 82.25 });
  assert.equal(f.value, 20.1, "the reading as it arrived");
});

test("buildIncidentAlert adds history, related sensors and kind, and the original server takes it", () => {
  const event: IncidentEvent = {
    event: "opened",
    incidentId: "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f",
    streamId: "line-1",
    startedAt: at,
    timestamp: at + 2000,
    sensorCount: 2,
    sensors: [evidence(2, 11, 2), evidence(3, 9)],
    maxSeverity: 11,
  };
  const history = {
    start: new Date(at - 3000).toISOString(),
    step_ms: 1000,
    values: [1, 1, 1, 7, 8, 9],
    onset: 3,
  };
  const related = [{ feature_idx: 5, feature: "feature_5", weight: 0.8, moved: 0.2 }];
  const alert = buildIncidentAlert(
    context,
    event,
    { latencyMs: 1, now: at + 3000 },
    { kind: "sensor", sensors: new Map([[2, { history, related }]]) },
  );
  assert.deepEqual(v.safeParse(alertSchema, alert).issues, undefined);
  assert.deepEqual(
    v.safeParse(originalMainServerAlertDto, JSON.parse(JSON.stringify(alert))).issues,
    undefined,
  );
  assert.equal(alert.kind, "sensor");
  assert.deepEqual(alert.anomalous_features[0].history, history);
  assert.deepEqual(alert.anomalous_features[0].related, related);
  assert.equal(alert.anomalous_features[1].history, undefined, "a sensor without context has none");
  const later = buildIncidentAlert(
    context,
    { ...event, event: "resolved", kind: "process" },
    {
      latencyMs: 0,
      now: at + 9000,
    },
  );
  assert.equal(later.kind, "process", "without a context the event's last kind is repeated");
});
