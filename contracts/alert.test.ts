import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { originalMainServerAlertDto } from "./_original_main_server_dto.ts";
import {
  alertInputSchema,
  alertIntakeSchema,
  alertSchema,
  existingDate,
  HISTORY_MAX_VALUES,
} from "./alert.ts";

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
  model_name: "featurewise_ocsvm",
  latency_ms: 3.2,
  max_severity: 12.4,
  anomalous_features: [
    {
      feature_idx: 17,
      score: 0.97,
      feature: "feature_17",
      severity: 12.4,
      value: 31.5,
      window: [20.1, 20.3, 20.2, 24.9, 31.5],
      typical: { low: 19.5, high: 21 },
      statistic: "level",
    },
    {
      feature_idx: 4051,
      score: 0.93,
      feature: "feature_4051",
      severity: 9.7,
      value: 0.2,
      window: [0.2, 0.2, 0.2, 0.2, 0.2],
      statistic: "quiet",
    },
  ],
};
const incident = {
  ...ours,
  incident_id: "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f",
  event: "opened",
  incident_started_at: "2026-11-24T08:59:59.000Z",
};
const firstPath = (schema: v.GenericSchema, input: unknown) => {
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

test("alert schema requires the evidence of each listed sensor and max_severity", () => {
  for (const key of ["severity", "value", "window", "statistic"]) {
    const { [key as "severity"]: _, ...feature } = ours.anomalous_features[0];
    const alert = { ...ours, anomalous_features: [feature] };
    assert.equal(firstPath(alertSchema, alert), `anomalous_features.0.${key}`);
    assert.equal(v.safeParse(alertInputSchema, alert).success, true, `${key} optional on input`);
  }
  const { max_severity: _, ...noMax } = ours;
  assert.equal(firstPath(alertSchema, noMax), "max_severity");
});

test("alert schema lets typical be absent (a model without typical ranges)", () => {
  const { typical: _, ...feature } = ours.anomalous_features[0];
  assert.equal(v.safeParse(alertSchema, { ...ours, anomalous_features: [feature] }).success, true);
});

test("alert schemas reject bad evidence with the path", () => {
  const f = ours.anomalous_features[0];
  const cases: [Record<string, unknown>, string][] = [
    [{ severity: -1 }, "severity"],
    [{ statistic: "Level!" }, "statistic"],
    [{ window: [1, "x"] }, "window.1"],
    [{ typical: { low: 1 } }, "typical.high"],
  ];
  for (const [patch, path] of cases) {
    const alert = { ...ours, anomalous_features: [{ ...f, ...patch }] };
    assert.equal(firstPath(alertInputSchema, alert), `anomalous_features.0.${path}`);
  }
});

test("alert schemas accept incident alerts and want incident fields together", () => {
  assert.equal(v.safeParse(alertSchema, incident).success, true);
  assert.equal(v.safeParse(alertInputSchema, incident).success, true);
  const resolved = { ...incident, event: "resolved", anomaly_detected: false };
  assert.equal(v.safeParse(alertSchema, resolved).success, true);
  assert.equal(firstPath(alertSchema, { ...incident, event: "closed" }), "event");
  const { event: _, ...partial } = incident;
  const r = v.safeParse(alertInputSchema, partial);
  assert.equal(r.success, false);
  assert.match(r.issues![0].message, /together/);
});

const history = {
  start: "2026-11-24T08:59:55.000Z",
  step_ms: 1000,
  values: [20.1, 20.2, 20.1, 24.9, 31.5],
  onset: 3,
};
const related = [
  {
    feature_idx: 4051,
    feature: "feature_4051",
    weight: 0.42,
    moved: 0.3,
    values: [7.1, null, 7.2, 7.1, 7.3],
  },
  { feature_idx: 9, feature: "feature_9", weight: 0.21, moved: -5.2 },
];
const withContext = {
  ...incident,
  kind: "sensor",
  anomalous_features: [
    { ...ours.anomalous_features[0], history, related },
    {
      ...ours.anomalous_features[1],
      history: {
        ...history,
        timestamps: [0, 1, 3, 4, 5].map((s) =>
          new Date(Date.UTC(2026, 10, 24, 9) + s * 1000).toISOString(),
        ),
        level: [null, null, 20.1, 20.1, 20.2],
      },
    },
  ],
};

test("alert schemas accept history, related sensors and the fault kind", () => {
  assert.deepEqual(v.safeParse(alertSchema, withContext).issues, undefined);
  assert.deepEqual(v.safeParse(alertInputSchema, withContext).issues, undefined);
  const { kind: _, ...noKind } = withContext;
  assert.equal(v.safeParse(alertSchema, noKind).success, true, "kind is optional");
  assert.equal(firstPath(alertSchema, { ...withContext, kind: "instrument" }), "kind");
});

test("alert schemas reject a history whose onset or lists do not match its values", () => {
  const f = withContext.anomalous_features[0];
  const bad = (patch: Record<string, unknown>) => ({
    ...withContext,
    anomalous_features: [{ ...f, history: { ...history, ...patch } }],
  });
  // A step that puts readings past the last date a clock can show (the incident page read it).
  for (const patch of [
    { onset: 5 },
    { level: [1, 2] },
    { timestamps: [history.start] },
    { step_ms: 1e16 },
  ]) {
    const r = v.safeParse(alertInputSchema, bad(patch));
    assert.equal(r.success, false, JSON.stringify(patch));
    assert.equal(v.getDotPath(r.issues![0]), "anomalous_features.0.history");
  }
  assert.equal(
    firstPath(alertInputSchema, bad({ values: [1, Number.NaN] })),
    "anomalous_features.0.history.values.1",
  );
  assert.equal(
    firstPath(alertInputSchema, bad({ start: "soon" })),
    "anomalous_features.0.history.start",
  );
});

test("alert schemas reject a related sensor with a weight outside 0..1", () => {
  const f = withContext.anomalous_features[0];
  const alert = {
    ...withContext,
    anomalous_features: [{ ...f, related: [{ ...related[0], weight: 1.5 }] }],
  };
  assert.equal(firstPath(alertSchema, alert), "anomalous_features.0.related.0.weight");
});

test("alert schemas keep a related sensor's readings, null where none was kept", () => {
  const out = v.parse(alertInputSchema, withContext);
  assert.deepEqual(out.anomalous_features[0].related?.[0].values, [7.1, null, 7.2, 7.1, 7.3]);
  assert.equal("values" in out.anomalous_features[0].related![1], false, "values are optional");
  const f = withContext.anomalous_features[0];
  const withValues = (values: unknown) => ({
    ...withContext,
    anomalous_features: [{ ...f, related: [{ ...related[0], values }] }],
  });
  assert.equal(
    firstPath(alertSchema, withValues([1, Number.POSITIVE_INFINITY])),
    "anomalous_features.0.related.0.values.1",
  );
  assert.equal(
    firstPath(alertSchema, withValues(new Array(HISTORY_MAX_VALUES + 1).fill(0))),
    "anomalous_features.0.related.0.values",
  );
});

test("the original main server's alert DTO accepts an alert with history, related and kind", () => {
  assert.deepEqual(v.safeParse(originalMainServerAlertDto, withContext).issues, undefined);
  // The model of that DTO is not vacuous: it rejects what the main server would.
  assert.equal(
    v.safeParse(originalMainServerAlertDto, { ...withContext, num_anomalous_features: "2" })
      .success,
    false,
  );
});

test("alert input schema reads a timestamp without a zone as UTC, as Python's isoformat() writes it", () => {
  for (const [sent, read] of [
    ["2026-11-24T09:00:00.123456", "2026-11-24T09:00:00.123456Z"],
    ["2026-11-24T09:00:00", "2026-11-24T09:00:00Z"],
  ]) {
    const r = v.safeParse(alertInputSchema, { ...original, timestamp: sent });
    assert.equal(r.success, true, sent);
    assert.equal(r.output.timestamp, read);
    assert.equal(Date.parse(r.output.timestamp), Date.parse(`${sent}Z`));
  }
  // A date alone, or a zone-less time of what our engine sends, is still refused.
  assert.equal(firstPath(alertInputSchema, { ...original, timestamp: "2026-11-24" }), "timestamp");
  assert.equal(
    firstPath(alertSchema, { ...ours, timestamp: "2026-11-24T09:00:00.123456" }),
    "timestamp",
  );
  assert.equal(
    firstPath(alertInputSchema, { ...original, frame_timestamp: "2026-11-24T09:00:00" }),
    "frame_timestamp",
  );
});

test("alert schemas refuse names PostgreSQL cannot store (NUL, a lone surrogate)", () => {
  for (const bad of ["f\u0000", "f\ud800", "\udc00f"]) {
    const listed = {
      ...original,
      anomalous_features: [{ feature_idx: 1, score: 0.5, feature: bad }],
    };
    assert.equal(firstPath(alertInputSchema, listed), "anomalous_features.0.feature");
    assert.equal(
      firstPath(alertInputSchema, { ...ours, model_version: `v${bad}` }),
      "model_version",
    );
    const related = {
      ...ours,
      anomalous_features: [
        {
          ...ours.anomalous_features[0],
          related: [{ feature_idx: 2, feature: bad, weight: 0.5, moved: 1 }],
        },
      ],
      num_anomalous_features: 1,
    };
    assert.equal(firstPath(alertSchema, related), "anomalous_features.0.related.0.feature");
  }
  // A name with characters beyond ASCII is fine.
  const named = {
    ...ours,
    anomalous_features: [{ ...ours.anomalous_features[0], feature: "Temp °C 🌡" }],
  };
  assert.equal(v.safeParse(alertSchema, named).success, true);
});

test("existingDate refuses a day past its month's end and takes leap days by the Gregorian rule", () => {
  for (const text of ["2024-02-29T00:00:00Z", "2000-02-29", "2026-11-30T10:00:00", "2026-12-31"]) {
    assert.equal(existingDate(text), true, text);
  }
  for (const text of ["2026-02-29T00:00:00Z", "1900-02-29", "2026-11-31T10:00:00", "2026-02-30"]) {
    assert.equal(existingDate(text), false, text);
  }
});

test("alert schemas refuse a timestamp of a day that does not exist instead of rolling it over", () => {
  assert.equal(
    firstPath(alertInputSchema, { ...original, timestamp: "2026-02-30T00:00:00Z" }),
    "timestamp",
  );
  assert.equal(
    firstPath(alertInputSchema, { ...original, timestamp: "2026-11-31T10:00:00" }),
    "timestamp",
  );
  assert.equal(
    firstPath(alertSchema, { ...ours, frame_timestamp: "2026-04-31T00:00:00Z" }),
    "frame_timestamp",
  );
  assert.equal(
    firstPath(alertSchema, { ...incident, incident_started_at: "2025-02-29T00:00:00Z" }),
    "incident_started_at",
  );
  const leap = v.parse(alertInputSchema, { ...original, timestamp: "2024-02-29T23:59:59.999999" });
  assert.equal(leap.timestamp, "2024-02-29T23:59:59.999999Z");
});

test("alert schemas want max_score at least every listed score; above them is a cut list", () => {
  assert.equal(firstPath(alertSchema, { ...ours, max_score: 0.95 }), "max_score");
  assert.equal(firstPath(alertInputSchema, { ...original, max_score: 0.9 }), "max_score");
  const cut = { ...ours, max_score: 0.99, num_anomalous_features: 9 };
  assert.deepEqual(v.safeParse(alertSchema, cut).issues, undefined);
  assert.deepEqual(
    v.safeParse(alertInputSchema, { ...original, max_score: 0.97 }).issues,
    undefined,
  );
});

test("alert intake schema reads model as model_name and refuses the two differing", () => {
  const { model_name: _, ...unnamed } = ours;
  const read = v.parse(alertIntakeSchema, { ...unnamed, model: "pca_v2" });
  assert.equal(read.model_name, "pca_v2");
  assert.equal("model" in read, false);
  const same = v.parse(alertIntakeSchema, { ...ours, model: ours.model_name });
  assert.equal(same.model_name, ours.model_name);
  assert.equal(firstPath(alertIntakeSchema, { ...ours, model: "pca_v2" }), "model");
  assert.equal(firstPath(alertIntakeSchema, { ...unnamed, model: "a b" }), "model");
  // Without model it reads as the input schema does, a body that is no object included.
  assert.equal(firstPath(alertIntakeSchema, [1, 2, 3]), "timestamp");
  assert.deepEqual(
    v.safeParse(alertIntakeSchema, original).output,
    v.parse(alertInputSchema, original),
  );
});
