import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultFeatureNames, parseModelMetadata } from "./model.ts";

const meta = () => ({
  name: "tiny",
  version: "1.0.0+abc",
  kind: "featurewise_ocsvm_rff",
  window_size: 5,
  n_features: 3,
  feature_names: defaultFeatureNames(3),
  input_name: "windows",
  output_name: "scores",
  score: { semantics: "calibrated", calibration: {} },
  default_threshold: 0.9,
  training: {},
  onnx_sha256: "a".repeat(64),
});

test("model metadata parses a consistent document", () => {
  assert.equal(parseModelMetadata(meta()).n_features, 3);
});

test("model metadata rejects a name count that disagrees with n_features", () => {
  assert.throws(
    () => parseModelMetadata({ ...meta(), n_features: 4 }),
    /feature_names has 3 names/,
  );
});

test("model metadata rejects duplicate names and bad fields with their path", () => {
  assert.throws(
    () => parseModelMetadata({ ...meta(), feature_names: ["a", "a", "b"] }),
    /not distinct/,
  );
  assert.throws(() => parseModelMetadata({ ...meta(), window_size: 0 }), /window_size/);
});

test("model metadata checks statistic names and typical ranges", () => {
  const full = {
    ...meta(),
    severity_output_name: "severity",
    statistic_output_name: "statistic",
    statistics: ["level", "residual"],
    typical: { description: "1st to 99th percentile", low: [0, 1, 2], high: [1, 1, 3] },
  };
  assert.deepEqual(parseModelMetadata(full).statistics, ["level", "residual"]);
  assert.throws(() => parseModelMetadata({ ...full, statistics: ["Level"] }), /statistics/);
  assert.throws(
    () => parseModelMetadata({ ...full, statistics: undefined }),
    /needs the statistics/,
  );
  assert.throws(
    () => parseModelMetadata({ ...full, typical: { ...full.typical, low: [0, 2, 2] } }),
    /typical.low exceeds typical.high/,
  );
  assert.throws(
    () => parseModelMetadata({ ...full, typical: { ...full.typical, high: [1, 1] } }),
    /one value per feature/,
  );
});

test("model metadata checks the running levels it asks the engine to keep", () => {
  const baseline = (alpha: number, features: number[]) => ({
    ...meta(),
    baseline: { description: "EWMA", alpha, span: 31, features },
  });
  assert.deepEqual(parseModelMetadata(baseline(0.2, [0, 2])).baseline?.features, [0, 2]);
  assert.throws(() => parseModelMetadata(baseline(0, [0])), /baseline\.alpha/);
  assert.throws(() => parseModelMetadata(baseline(1.5, [0])), /baseline\.alpha/);
  assert.throws(() => parseModelMetadata(baseline(0.2, [3])), /ascending distinct indices/);
  assert.throws(() => parseModelMetadata(baseline(0.2, [2, 1])), /ascending distinct indices/);
  assert.throws(() => parseModelMetadata(baseline(0.2, [0.5])), /baseline\.features/);
  assert.throws(
    () =>
      parseModelMetadata({
        ...baseline(0.2, [0]),
        baseline: { description: "", alpha: 0.2, span: 0, features: [0] },
      }),
    /baseline\.span/,
  );
});
