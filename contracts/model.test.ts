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
