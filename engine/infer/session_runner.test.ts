import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { openRunner } from "./session_runner.ts";

// The inference worker on a real model (8 sensors): runs queued while others run, and a release
// that comes while runs are still in flight.
let fixture: ModelFixture;
const log = createLogger({ service: "test", level: "silent" });
before(async () => {
  fixture = await trainFixtureModel({ features: 8, name: "runner" });
});
after(() => fixture.remove());

const io = { inputName: "windows", outputName: "scores" };

test("runs posted while others run come back in order, each into its own rows", async () => {
  const runner = await openRunner({ path: join(fixture.dir, "runner.onnx"), device: "cpu", log });
  try {
    const W = Number(runner.inputShapes.windows[1]);
    const F = 8;
    const windows = (t0: number) => {
      const x = new Float32Array(W * F);
      for (let t = 0; t < W; t++) x.set(fixture.normalFrame(t0 + t), t * F);
      return x;
    };
    const spiked = windows(0);
    spiked.set(fixture.spikedFrame(W - 1, 3), (W - 1) * F);
    const inputs = [windows(0), spiked, windows(5)];
    const outputs = inputs.map(() => new Float32Array(F));
    // All three posted before the first reply is read.
    await Promise.all(inputs.map((x, i) => runner.run(io, [1, W, F], x, outputs[i])));
    const alone = inputs.map(() => new Float32Array(F));
    for (const [i, x] of inputs.entries()) await runner.run(io, [1, W, F], x, alone[i]);
    assert.deepEqual(outputs, alone);
    assert.ok(outputs[1][0] > outputs[0][0], "the spiked run's scores are its own");
  } finally {
    await runner.release();
  }
});

test("a release while runs are in flight lets them finish and waits for the worker to exit", async () => {
  const runner = await openRunner({ path: join(fixture.dir, "runner.onnx"), device: "cpu", log });
  const W = Number(runner.inputShapes.windows[1]);
  const input = new Float32Array(8 * W * 8);
  const runs = [0, 1].map(() => runner.run(io, [8, W, 8], input, new Float32Array(8 * 8)));
  // Nothing else keeps this test's event loop alive: a reply arriving during the release must
  // not let the worker go unreferenced before it exits.
  await runner.release();
  const settled = await Promise.allSettled(runs);
  assert.deepEqual(
    settled.map((s) => s.status),
    ["fulfilled", "fulfilled"],
  );
});
