import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { trainFeaturewise } from "../featurewise/train.ts";
import { exportOnnx } from "../onnx/export.ts";
import { plantSeries } from "../train/plant_series.ts";
import { operatingPoints, poissonUpper95 } from "./report.ts";
import { emptyKindTally, type KindTally } from "./run.ts";
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
    const shape = {
      windowSize: 5,
      nFeatures: F,
      input: "windows",
      output: "scores",
      severity: "severity",
      statistic: "statistic",
    };
    const scorers = [
      await onnxScorer(
        "default",
        "",
        exportOnnx(svdd.params),
        { ...shape, baseline: svdd.baseline },
        0.9,
      ),
      ...baselineScorers(series, linear.params, 1e-4 / F, 5),
    ];
    const seen = new Map<string, number>();
    const r = await runSuite(scorers, {
      plantSeed: 31,
      nFeatures: F,
      windowSize: 5,
      cleanFrames: 100,
      eventsPerKind: 5,
      evalSeed: 99,
      concurrency: 5,
      log: () => {},
      tap(segment, t, s, scores, window, extras) {
        if (s !== 0) return;
        // Each segment is one stream: its windows arrive in order, with the model's outputs.
        const last = seen.get(segment) ?? 3;
        assert.equal(t, last + 1);
        seen.set(segment, t);
        assert.equal(scores.length, F);
        assert.equal(window.length, 5 * F);
        assert.equal(extras.severity?.length, F);
        assert.equal(extras.statistic?.length, F);
      },
    });
    assert.deepEqual(
      r.segments.map((seg) => seg.name),
      ["clean", "spike", "level_shift", "drift", "noise_burst", "stuck"],
    );
    for (const seg of r.segments) {
      assert.equal(seen.get(seg.name), seg.frames - 1);
      assert.equal(seg.label.length, seg.frames);
    }
    assert.equal(r.segments[0].label.indexOf(1), -1);
    assert.ok(r.segments[2].label.includes(1));
    assert.equal(r.clean[0].frames, 100);
    const shift = r.kinds[0].find((k) => k.kind === "level_shift")!;
    assert.equal(shift.events, 5);
    assert.ok(shift.detected >= 3, `detected ${shift.detected} of 5 level shifts`);
    assert.ok(shift.delays.every((d) => d >= 0));
  });

  it("operatingPoints re-thresholds a scorer to the reference's false alerts and recall", () => {
    const kind = (detected: number, eventMax: number[]): KindTally => ({
      ...emptyKindTally("spike", eventMax.length),
      detected,
      eventMax: Float32Array.from(eventMax),
    });
    const clean = (alertFrames: number, maxima: number[]) => ({
      frames: maxima.length,
      alertFrames,
      flaggedFeatureWindows: 0,
      maxima: Float32Array.from(maxima),
    });
    const points = operatingPoints({
      scorers: [
        { name: "model", description: "", threshold: 0.9 },
        { name: "baseline", description: "", threshold: 5 },
      ],
      // The model: 1 false-alert frame, 3 of 4 events found.
      clean: [clean(1, [0.1, 0.95, 0.2, 0.3, 0.1]), clean(5, [6, 9, 7, 8, 10])],
      kinds: [[kind(3, [1, 1, 1, 0.5])], [kind(4, [9.5, 7.5, 11, 6.5])]],
      segments: [],
    }) as Record<string, Record<string, Record<string, unknown>>>;
    // At most 1 false alert: flag above the second-highest clean maximum (9): only 9.5 and 11.
    assert.deepEqual(points.baseline.matched_false_alerts, {
      false_alert_frames: 1,
      event_recall: { spike: 0.5 },
    });
    // 3 of 4 events need a threshold of 7.5: clean maxima 8, 9, 10 reach it.
    assert.deepEqual(points.baseline.false_alert_frames_at_matched_recall, { spike: 3 });
    assert.equal(points.model, undefined);
  });
});
