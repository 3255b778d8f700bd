import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import {
  ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES,
  originalMainServerAlertDto,
} from "../../contracts/_original_main_server_dto.ts";
import { alertSchema } from "../../contracts/alert.ts";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { defaultFeatureNames } from "../../contracts/model.ts";
import type { IncidentEvent, SensorEvidence } from "../../scoring/incident_tracker.ts";
import { buildFrameAlert, buildIncidentAlert } from "./build_alert.ts";
import { fitAlert } from "./fit_alert.ts";

const F = 25_000;
const context = {
  featureNames: defaultFeatureNames(F),
  statistics: ["level", "dynamics", "quiet"],
  typical: {
    low: Array.from({ length: F }, (_, f) => -1000.123 - f),
    high: Array.from({ length: F }, (_, f) => 1000.456 + f),
  },
  threshold: 0.9,
  modelName: "featurewise_ocsvm",
  modelVersion: "2.3.0+4cf7cca86b18",
};
const at = Date.UTC(2026, 10, 24, 9);
/** `n` flagged sensors, most severe first, with readings that print long. */
const flagged = (n: number): SensorEvidence[] =>
  Array.from({ length: n }, (_, i) => ({
    feature_idx: (i * 7919) % F,
    score: 1,
    severity: 50 - i * 0.01,
    statistic: i % 3,
    window: [1234.567, 1234.568, 1234.569, 1234.561, 2234.567],
  }));
const size = (a: unknown) => Buffer.byteLength(JSON.stringify(a));

test("the default ALERT_MAX_BYTES is the original main server's body limit", () => {
  assert.equal(
    parseConfig(engineConfigSchema, {}).ALERT_MAX_BYTES,
    ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES,
  );
});

test("a frame alert of 1,000 flagged sensors fits the original server's limit, worst first", () => {
  const input = { streamId: "s", frameTimestamp: at, count: 5000, latencyMs: 1, now: at };
  const whole = buildFrameAlert(context, { ...input, sensors: flagged(1000) });
  assert.ok(size(whole) > 2 * ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES, `${size(whole)} bytes`);
  const fitted = buildFrameAlert(
    { ...context, maxBytes: ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES },
    { ...input, sensors: flagged(1000) },
  );
  assert.ok(size(fitted) <= ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES, `${size(fitted)} bytes`);
  assert.ok(
    size(fitted) > ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES - 400,
    "no more is cut than needed",
  );
  assert.deepEqual(v.safeParse(alertSchema, fitted).issues, undefined);
  assert.equal(v.safeParse(originalMainServerAlertDto, fitted).success, true);
  assert.equal(fitted.num_anomalous_features, 5000, "the count still covers every sensor");
  const listed = fitted.anomalous_features;
  assert.ok(listed.length > 100 && listed.length < 1000, `${listed.length} listed`);
  // The most severe keep their place and every field but, past the first few, their range.
  const ranged = listed.findIndex((f) => f.typical === undefined);
  assert.ok(ranged > 0, "the worst sensors keep their typical range");
  assert.deepEqual(
    listed,
    whole.anomalous_features.slice(0, listed.length).map((f, i) => {
      if (i < ranged) return f;
      const { typical: _, ...rest } = f;
      return rest;
    }),
  );
  // As many as fit are listed: one more would not.
  const next = { ...whole.anomalous_features[listed.length] };
  delete next.typical;
  assert.ok(size(fitted) + size(next) + 1 > ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES);
  assert.equal(fitted.max_severity, whole.max_severity);
});

test("fitAlert leaves out context before ranges, least severe first, and a fitting alert alone", () => {
  const event: IncidentEvent = {
    event: "opened",
    incidentId: "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f",
    streamId: "s",
    timestamp: at,
    startedAt: at - 5000,
    sensorCount: 3,
    sensors: flagged(3),
  } as IncidentEvent;
  const history = {
    start: new Date(at).toISOString(),
    step_ms: 1000,
    values: Array(2000).fill(1234.567),
    onset: 1990,
  };
  const sensors = new Map(flagged(3).map((e) => [e.feature_idx, { history }]));
  const build = (maxBytes?: number) =>
    buildIncidentAlert({ ...context, maxBytes }, event, { latencyMs: 1, now: at }, { sensors });
  const whole = build();
  const roomy = build(size(whole));
  assert.deepEqual(roomy, whole, "an alert within the limit is left as it is");
  assert.equal(fitAlert(structuredClone(whole), size(whole)), undefined);

  // Room for two histories: the least severe sensor's goes.
  const two = build(size(whole) - 1);
  assert.deepEqual(
    two.anomalous_features.map((f) => [f.history !== undefined, f.typical !== undefined]),
    [
      [true, true],
      [true, true],
      [false, true],
    ],
  );
  // No room for any history: ranges stay, histories go.
  const none = structuredClone(whole);
  const fit = fitAlert(none, size(whole) - 3 * size(history) + 200);
  assert.deepEqual(fit, { contextDropped: 3, typicalDropped: 0, unlisted: 0 });
  // A limit below one sensor's bare entry keeps the most severe one listed.
  const tiny = structuredClone(whole);
  assert.deepEqual(fitAlert(tiny, 100), { contextDropped: 1, typicalDropped: 1, unlisted: 2 });
  assert.equal(tiny.anomalous_features.length, 1);
  assert.equal(tiny.anomalous_features[0].feature_idx, whole.anomalous_features[0].feature_idx);
  assert.equal(tiny.num_anomalous_features, 3);
  assert.deepEqual(v.safeParse(alertSchema, tiny).issues, undefined);
});
