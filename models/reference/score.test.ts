import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import type { FeaturewiseKind, FeaturewiseParams } from "../featurewise/params.ts";
import { DRIFT_BLOCKS, driftIndex, trainFeaturewise } from "../featurewise/train.ts";
import { exportOnnx } from "../onnx/export.ts";
import { createPlant } from "../signal/mod.ts";
import { Rng } from "../signal/prng.ts";
import { plantSeries } from "../train/plant_series.ts";
import { scoreWindows, scoreWindowsDetailed } from "./mod.ts";

const F = 300;
const W = 5;
const series = plantSeries(F, 600, 77, 1);
const sensors = createPlant({ nFeatures: F, seed: 77 }).sensors;
const familyOf = (f: number) => sensors.family[f];

/**
 * A model trained on `nF` sensors that all follow one AR(1) factor (`ar`, innovation `innov`)
 * plus small noise, 1,200 frames, and a normal window of that history (frames 600..604).
 */
function oneFactorWindow(nF: number, seed: number, ar: number, innov: number) {
  const T = 1200;
  const rng = new Rng(seed);
  const values = new Float32Array(T * nF);
  let factor = 0;
  for (let t = 0; t < T; t++) {
    factor = ar * factor + innov * rng.normal();
    for (let f = 0; f < nF; f++) values[t * nF + f] = 50 + factor + 0.05 * rng.normal();
  }
  const { params } = trainFeaturewise(
    { values, nFrames: T, nFeatures: nF },
    { kind: "featurewise_ocsvm_svdd", seed: 3 },
  );
  return { params, x: Float32Array.from(values.subarray(600 * nF, (600 + W) * nF)) };
}

/** The reference scorer and the ONNX graph both flag exactly `expected` in window `x`. */
async function assertFlaggedOnly(
  params: FeaturewiseParams,
  x: Float32Array,
  nF: number,
  expected: number[],
): Promise<void> {
  const d = scoreWindowsDetailed(params, x, 1);
  assert.deepEqual(
    [...d.scores.keys()].filter((f) => d.scores[f] >= 0.9),
    expected,
  );
  const session = await ort.InferenceSession.create(exportOnnx(params));
  const out = await session.run({ windows: new ort.Tensor("float32", x, [1, W, nF]) });
  const onnx = out.scores.data as Float32Array;
  assert.deepEqual(
    [...onnx.keys()].filter((f) => onnx[f] >= 0.9),
    expected,
  );
}

/** Windows of real frames, some values perturbed by up to +-20 sensor std (anomalous on purpose). */
function randomWindows(batch: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(batch * W * F);
  for (let b = 0; b < batch; b++) {
    const t0 = rng.int(series.nFrames - W);
    for (let i = 0; i < W; i++) {
      x.set(series.values.subarray((t0 + i) * F, (t0 + i + 1) * F), (b * W + i) * F);
    }
  }
  for (let j = 0; j < x.length / 10; j++) {
    const k = rng.int(x.length);
    x[k] += (rng.uniform() - 0.5) * 0.4 * Math.abs(x[k]) + rng.normal();
  }
  return x;
}

for (const kind of ["featurewise_ocsvm_svdd", "featurewise_ocsvm_linear"] as FeaturewiseKind[]) {
  describe(`scoreWindows (${kind})`, () => {
    const { params } = trainFeaturewise(series, { kind, seed: 5 });

    it("onnx graph agrees with the reference scorer within 1e-4 on random inputs", async () => {
      const session = await ort.InferenceSession.create(exportOnnx(params));
      for (const [batch, seed] of [
        [1, 1],
        [7, 2],
        [32, 3],
      ]) {
        const x = randomWindows(batch, seed);
        const out = await session.run({ windows: new ort.Tensor("float32", x, [batch, W, F]) });
        const onnx = out.scores.data as Float32Array;
        const severity = out.severity.data as Float32Array;
        const statistic = out.statistic.data as BigInt64Array;
        assert.deepEqual(out.scores.dims, [batch, F]);
        assert.deepEqual(out.severity.dims, [batch, F]);
        assert.deepEqual(out.statistic.dims, [batch, F]);
        assert.equal(out.statistic.type, "int64");
        const detail = scoreWindowsDetailed(params, x, batch);
        const ref = detail.scores;
        assert.deepEqual(scoreWindows(params, x, batch), ref);
        let maxDiff = 0;
        let maxSevDiff = 0;
        let spread = 0;
        let statDiffers = 0;
        let decided = new Set<number>();
        for (let i = 0; i < ref.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(ref[i] - onnx[i]));
          // Severity reaches hundreds: float32 arithmetic agrees to a relative 1e-4.
          const sevDiff =
            Math.abs(detail.severity[i] - severity[i]) / Math.max(1, detail.severity[i]);
          maxSevDiff = Math.max(maxSevDiff, sevDiff);
          spread += ref[i] > 0.01 && ref[i] < 0.99 ? 1 : 0;
          // Where two statistics tie within float32 noise either may decide.
          if (detail.margin[i] > 1e-4 && Number(statistic[i]) !== detail.statistic[i])
            statDiffers++;
          decided.add(detail.statistic[i]);
        }
        assert.ok(maxDiff <= 1e-4, `max |onnx - reference| = ${maxDiff}`);
        assert.ok(maxSevDiff <= 1e-4, `max relative severity difference = ${maxSevDiff}`);
        assert.equal(statDiffers, 0, "deciding statistic differs");
        assert.ok(spread > 0, "some scores lie strictly inside (0, 1)");
        if (kind === "featurewise_ocsvm_svdd") {
          assert.ok(decided.size >= 3, `statistics deciding: ${[...decided]}`);
        }
        decided = new Set();
      }
    });

    it("scoreWindows keeps scores in [0, 1] and flags a 50-sigma spike", () => {
      const x = randomWindows(2, 9);
      const f = 17;
      x[(1 * W + 4) * F + f] += 50 * series.nFeatures; // far outside any normal range
      const scores = scoreWindows(params, x, 2);
      assert.ok(scores.every((s) => s >= 0 && s <= 1));
      if (kind === "featurewise_ocsvm_svdd") assert.equal(scores[F + f], 1);
    });

    if (kind === "featurewise_ocsvm_svdd") {
      it("scoreWindows flags a continuous sensor stuck at a normal value", () => {
        const x = randomWindows(1, 4);
        const continuous = [...Array(F).keys()].find((f) => familyOf(f) === 0)!;
        for (let i = 1; i < W; i++) x[i * F + continuous] = x[continuous];
        const scores = scoreWindows(params, x, 1);
        assert.equal(scores[continuous], 1);
      });
    }

    it("severity keeps ranking spikes far beyond the point where the score stops at 1", () => {
      const f = [...Array(F).keys()].find((g) => familyOf(g) === 0)!;
      const base = randomWindows(1, 11);
      const sizes = [1e2, 1e3, 1e4, 1e5, 1e6, 1e7];
      // The linear model is one-sided: it flags readings against its weights' direction only.
      const sign =
        params.kind === "featurewise_ocsvm_linear" ? -Math.sign(params.weight[4 * F + f]) : 1;
      const sev = sizes.map((k) => {
        const x = Float32Array.from(base);
        x[4 * F + f] += sign * k * Math.max(1, Math.abs(x[4 * F + f]));
        const d = scoreWindowsDetailed(params, x, 1);
        assert.equal(d.scores[f], 1);
        return d.severity[f];
      });
      for (let i = 1; i < sev.length; i++) assert.ok(sev[i] > sev[i - 1], `severity ${sev}`);
      // Down to tail probabilities of 1e-30 and beyond, each size still has its own severity.
      assert.ok(sev[sev.length - 1] > 30, `severity ${sev}`);
    });

    it("scoreWindows rejects a window tensor of the wrong size", () => {
      assert.throws(() => scoreWindows(params, new Float32Array(10), 1), /must hold 1x5x300/);
    });
  });
}

describe("cross-sensor stage", () => {
  it("a broken relation between correlated sensors is flagged, by the residual statistic", async () => {
    // Twelve sensors driven by one slow common factor plus small own noise: each reading alone
    // stays in its normal range when the relation breaks, only their agreement does not.
    const nF = 12;
    const T = 1200;
    const rng = new Rng(21);
    const gain = Array.from({ length: nF }, (_, f) => (f % 2 === 0 ? 1 : -1) * (1 + f / nF));
    const values = new Float32Array(T * nF);
    let factor = 0;
    for (let t = 0; t < T; t++) {
      factor = 0.98 * factor + 0.2 * rng.normal();
      for (let f = 0; f < nF; f++) values[t * nF + f] = 50 + gain[f] * factor + 0.05 * rng.normal();
    }
    const { params, statistics } = trainFeaturewise(
      { values, nFrames: T, nFeatures: nF },
      { kind: "featurewise_ocsvm_svdd", seed: 3 },
    );
    assert.equal(statistics[4], "residual");
    assert.ok(params.kind === "featurewise_ocsvm_svdd" && params.crossCols >= 1);
    // A window at a typical factor value; sensor 0 then reads what the factor's opposite gives.
    const x = new Float32Array(W * nF);
    for (let i = 0; i < W; i++) {
      for (let f = 0; f < nF; f++) x[i * nF + f] = 50 + gain[f] * 1.5 + 0.05 * rng.normal();
      x[i * nF] = 50 - gain[0] * 1.5 + 0.05 * rng.normal();
    }
    const d = scoreWindowsDetailed(params, x, 1);
    assert.equal(d.statistic[0], 4, `deciding statistic ${d.statistic[0]}`);
    assert.ok(d.scores[0] >= 0.9, `score ${d.scores[0]}`);
    const session = await ort.InferenceSession.create(exportOnnx(params));
    const out = await session.run({ windows: new ort.Tensor("float32", x, [1, W, nF]) });
    assert.ok(Math.abs((out.scores.data as Float32Array)[0] - d.scores[0]) <= 1e-4);
    assert.equal(Number((out.statistic.data as BigInt64Array)[0]), 4);
  });

  it("a gross reading on one sensor flags that sensor only, not the sensors it correlates with", async () => {
    const { params, x } = oneFactorWindow(12, 22, 0.98, 0.2);
    x[(W - 1) * 12 + 5] = 1e6;
    await assertFlaggedOnly(params, x, 12, [5]);
  });
});

describe("cross-sensor stage, gross readings of different sizes", () => {
  it("several gross readings, each a different size, flag those sensors only", async () => {
    // One rejection step removes only the worst group (within a factor 2 of the largest ratio);
    // the others must stay clipped meanwhile, or the next projection carries them in full.
    const nF = 40;
    const { params, x } = oneFactorWindow(nF, 23, 0.9, 0.4);
    x[(W - 1) * nF + 3] = 1e6;
    x[(W - 1) * nF + 17] = 5e3;
    x[(W - 1) * nF + 29] = 300;
    await assertFlaggedOnly(params, x, nF, [3, 17, 29]);
  });
});

describe("drifting sensors", () => {
  // Six stationary sensors and one that trends through the whole history (a temperature
  // following the weather): 0.01 per frame on noise of 0.1.
  const nF = 7;
  const T = 1000;
  const rng = new Rng(31);
  const values = new Float32Array(T * nF);
  for (let t = 0; t < T; t++) {
    for (let f = 0; f < 6; f++) values[t * nF + f] = 20 + 0.1 * rng.normal();
    values[t * nF + 6] = 20 + 0.01 * t + 0.1 * rng.normal();
  }
  const series = { values, nFrames: T, nFeatures: nF };

  it("driftIndex separates a trend from stationary noise", () => {
    const col = (f: number) => Float64Array.from({ length: T }, (_, t) => values[t * nF + f]);
    assert.ok(driftIndex(col(0), DRIFT_BLOCKS) < 0.05, `stationary ${driftIndex(col(0), 4)}`);
    assert.ok(driftIndex(col(6), DRIFT_BLOCKS) > 10, `trend ${driftIndex(col(6), 4)}`);
    assert.equal(driftIndex(new Float64Array(100).fill(3), DRIFT_BLOCKS), 0);
  });

  it("without a running level (baselineAlpha 0) a drifting sensor's level is not judged; its jumps still are", async () => {
    const { params, calibration, baseline } = trainFeaturewise(series, {
      kind: "featurewise_ocsvm_svdd",
      seed: 3,
      baselineAlpha: 0,
    });
    assert.equal(baseline, undefined);
    assert.equal(calibration.drifting_features, 1);
    // 300 frames after the history: the trend has moved the sensor 3 units (30 noise sd) on.
    const x = new Float32Array(W * nF);
    for (let i = 0; i < W; i++) {
      for (let f = 0; f < 6; f++) x[i * nF + f] = 20 + 0.1 * rng.normal();
      x[i * nF + 6] = 20 + 0.01 * (T + 300 + i) + 0.1 * rng.normal();
    }
    let d = scoreWindowsDetailed(params, x, 1);
    assert.ok(d.scores[6] < 0.9, `trend continued: score ${d.scores[6]}`);
    // A stationary sensor moved as far is flagged (by its level or its residual).
    const shifted = Float32Array.from(x);
    for (let i = 0; i < W; i++) shifted[i * nF + 2] += 3;
    d = scoreWindowsDetailed(params, shifted, 1);
    assert.ok(
      d.scores[2] >= 0.9 && [0, 4].includes(d.statistic[2]),
      `stationary shift ${d.scores[2]}`,
    );
    // A jump within the window of the drifting sensor is flagged (its dynamics).
    const jump = Float32Array.from(x);
    jump[(W - 1) * nF + 6] += 3;
    d = scoreWindowsDetailed(params, jump, 1);
    assert.ok(d.scores[6] >= 0.9 && d.statistic[6] === 1, `jump ${d.scores[6]} ${d.statistic[6]}`);
    // The ONNX graph agrees.
    const session = await ort.InferenceSession.create(exportOnnx(params));
    const out = await session.run({ windows: new ort.Tensor("float32", x, [1, W, nF]) });
    assert.ok(
      Math.abs(
        (out.scores.data as Float32Array)[6] - scoreWindowsDetailed(params, x, 1).scores[6],
      ) <= 1e-4,
    );
  });

  it("driftMax Infinity judges every level, as before the rule", () => {
    const { calibration } = trainFeaturewise(series, {
      kind: "featurewise_ocsvm_svdd",
      seed: 3,
      driftMax: Number.POSITIVE_INFINITY,
    });
    assert.equal(calibration.drifting_features, 0);
    assert.equal(calibration.baseline_features, 0);
  });
});
