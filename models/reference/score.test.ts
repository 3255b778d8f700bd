import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import type { FeaturewiseKind } from "../featurewise/params.ts";
import { trainFeaturewise } from "../featurewise/train.ts";
import { exportOnnx } from "../onnx/export.ts";
import { createPlant } from "../signal/mod.ts";
import { Rng } from "../signal/prng.ts";
import { plantSeries } from "../train/plant_series.ts";
import { scoreWindows } from "./mod.ts";

const F = 300;
const W = 5;
const series = plantSeries(F, 600, 77, 1);
const sensors = createPlant({ nFeatures: F, seed: 77 }).sensors;
const familyOf = (f: number) => sensors.family[f];

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
        assert.deepEqual(out.scores.dims, [batch, F]);
        const ref = scoreWindows(params, x, batch);
        let maxDiff = 0;
        let spread = 0;
        for (let i = 0; i < ref.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(ref[i] - onnx[i]));
          spread += ref[i] > 0.01 && ref[i] < 0.99 ? 1 : 0;
        }
        assert.ok(maxDiff <= 1e-4, `max |onnx - reference| = ${maxDiff}`);
        assert.ok(spread > 0, "some scores lie strictly inside (0, 1)");
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

    it("scoreWindows rejects a window tensor of the wrong size", () => {
      assert.throws(() => scoreWindows(params, new Float32Array(10), 1), /must hold 1x5x300/);
    });
  });
}
