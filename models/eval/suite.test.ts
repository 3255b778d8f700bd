import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { trainFeaturewise } from "../featurewise/train.ts";
import { exportOnnx } from "../onnx/export.ts";
import { plantSeries } from "../train/plant_series.ts";
import { poissonUpper95 } from "./report.ts";
import { onnxScorer } from "./scorers.ts";
import { baselineScorers, runSuite } from "./suite.ts";

describe("eval suite", () => {
  it("poissonUpper95 gives the classic bound of 3 for zero events", () => {
    assert.ok(Math.abs(poissonUpper95(0) - 2.996) < 0.01);
    assert.ok(poissonUpper95(5) > 5);
  });

  it("runSuite finds injected level shifts with the default model and counts clean frames", async () => {
    const F = 200;
    const series = plantSeries(F, 600, 31, 1);
    const svdd = trainFeaturewise(series, { kind: "featurewise_ocsvm_svdd", seed: 1 });
    const linear = trainFeaturewise(series, { kind: "featurewise_ocsvm_linear", seed: 1 });
    if (linear.params.kind !== "featurewise_ocsvm_linear") throw new Error("unreachable");
    const shape = { windowSize: 5, nFeatures: F, input: "windows", output: "scores" };
    const scorers = [
      await onnxScorer("default", "", exportOnnx(svdd.params), shape, 0.9),
      ...baselineScorers(series, linear.params, 1e-4 / F, 5),
    ];
    const r = await runSuite(scorers, {
      plantSeed: 31,
      nFeatures: F,
      windowSize: 5,
      cleanFrames: 100,
      eventsPerKind: 5,
      evalSeed: 99,
      concurrency: 5,
      log: () => {},
    });
    assert.equal(r.clean[0].frames, 100);
    const shift = r.kinds[0].find((k) => k.kind === "level_shift")!;
    assert.equal(shift.events, 5);
    assert.ok(shift.detected >= 3, `detected ${shift.detected} of 5 level shifts`);
    assert.ok(shift.delays.every((d) => d >= 0));
  });
});
