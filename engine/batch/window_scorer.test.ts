import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { severityScale } from "../../scoring/flagged_sensors.ts";
import { WindowShape } from "../../scoring/window_features.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { loadModel, type ScoringModel } from "../infer/load_model.ts";
import { StreamWindows } from "../window/stream_windows.ts";
import { WindowScorer } from "./window_scorer.ts";

// The one window scorer both drivers (the in-memory batcher, the scale-out worker) use, on a
// real model: 12 sensors, the last 2 following a running level.
describe("windowScorer", () => {
  let fixture: ModelFixture;
  let model: ScoringModel;
  let shape: WindowShape;
  const log = createLogger({ service: "test", level: "silent" });

  before(async () => {
    fixture = await trainFixtureModel({ features: 12, drifting: 2, name: "scorer" });
    model = await loadModel({
      dir: fixture.dir,
      name: fixture.name,
      device: "cpu",
      log,
      maxBatch: 64,
    });
    shape = WindowShape.forModel(model.metadata);
  });
  after(async () => {
    await model.close();
    await fixture.remove();
  });

  const scorerWith = (maxBatch: number, maxFeatures = 1000) =>
    new WindowScorer({
      model,
      shape,
      maxBatch,
      flag: { threshold: 0.9, maxFeatures, severityScale: severityScale(model.metadata) },
    });

  /** Feeds `frames` of stream `id` through fresh windows into `scorer`, row per full window. */
  async function feed(scorer: WindowScorer, frames: Float32Array[], id = "s") {
    const windows = new StreamWindows({ shape });
    for (const [t, values] of frames.entries()) {
      if (!windows.push(id, values, scorer.input(), scorer.raw())) continue;
      await scorer.add({ streamId: id, timestamp: 1000 * t, receivedAt: t });
    }
  }

  test("scores a batch larger than one run the same as window by window, evidence included", async () => {
    assert.ok(model.windowsPerRun < 20, "the batch spans several runs");
    const frames = Array.from({ length: 24 }, (_, t) =>
      t === 12 ? fixture.spikedFrame(t, 3) : fixture.normalFrame(t),
    );
    const batched = scorerWith(64);
    await batched.begin();
    await feed(batched, frames);
    const batch = await batched.finish();
    assert.equal(batch.size, 24 - shape.windowSize + 1);
    assert.equal(batched.rows, batch.size);

    const single = scorerWith(1);
    const windows = new StreamWindows({ shape });
    let row = 0;
    for (const [t, values] of frames.entries()) {
      await single.begin();
      if (!windows.push("s", values, single.input(), single.raw())) continue;
      await single.add({ streamId: "s", timestamp: 1000 * t, receivedAt: t });
      const one = await single.finish();
      const F = shape.frameSize;
      assert.deepEqual(
        [...one.scores.subarray(0, F)],
        [...batch.scores.subarray(row * F, (row + 1) * F)],
        `row ${row}`,
      );
      const flagged = (b: typeof one, r: number) => [
        ...b.flagged.subarray(b.flaggedFrom[r], b.flaggedFrom[r + 1]),
      ];
      assert.deepEqual(flagged(one, 0), flagged(batch, row));
      // The evidence kept from either run tensor (the batch alternates between two).
      const W = shape.windowSize;
      const evidence = (b: typeof one, r: number) => [
        ...b.windows.subarray(b.evidenceFrom[r] * W, b.evidenceFrom[r + 1] * W),
      ];
      assert.deepEqual(evidence(one, 0), evidence(batch, row), `row ${row} evidence`);
      row++;
    }
    assert.equal(row, batch.size);
  });

  test("flags the spiked sensors, most severe first, and keeps their windows as sent", async () => {
    const scorer = scorerWith(64, 2);
    await scorer.begin();
    const frames = Array.from({ length: 8 }, (_, t) =>
      t === 7 ? fixture.spikedFrame(t, 3) : fixture.normalFrame(t),
    );
    await feed(scorer, frames);
    const batch = await scorer.finish();
    const last = batch.size - 1;
    const flagged = [
      ...batch.flagged.subarray(batch.flaggedFrom[last], batch.flaggedFrom[last + 1]),
    ];
    assert.deepEqual([...flagged].sort(), [0, 1, 2], "the three spiked sensors");
    // Only the two most severe keep their windows (maxFeatures 2).
    assert.equal(batch.evidenceFrom[last + 1] - batch.evidenceFrom[last], 2);
    const W = shape.windowSize;
    for (let j = 0; j < 2; j++) {
      const f = flagged[j];
      const at = (batch.evidenceFrom[last] + j) * W;
      const window = [...batch.windows.subarray(at, at + W)];
      assert.deepEqual(
        window,
        frames.slice(8 - W).map((x) => x[f]),
      );
      assert.ok(Number.isNaN(batch.levels[batch.evidenceFrom[last] + j]));
    }
    // Windows with nothing flagged keep nothing.
    assert.equal(batch.flaggedFrom[1] - batch.flaggedFrom[0], 0);
    assert.equal(batch.evidenceFrom[1], batch.evidenceFrom[0]);
  });

  test("gives a running-level sensor's readings as they arrived and its level", async () => {
    const scorer = scorerWith(64);
    await scorer.begin();
    const drifting = fixture.drifting[0];
    const frames = Array.from({ length: 10 }, (_, t) => fixture.normalFrame(t));
    frames[9] = Float32Array.from(frames[9]);
    frames[9][drifting] += 500;
    await feed(scorer, frames);
    const batch = await scorer.finish();
    const last = batch.size - 1;
    const flagged = [
      ...batch.flagged.subarray(batch.flaggedFrom[last], batch.flaggedFrom[last + 1]),
    ];
    const j = flagged.indexOf(drifting);
    assert.ok(j >= 0, "the jump of a drifting sensor is flagged");
    const W = shape.windowSize;
    const at = (batch.evidenceFrom[last] + j) * W;
    assert.deepEqual(
      [...batch.windows.subarray(at, at + W)],
      frames.slice(10 - W).map((x) => x[drifting]),
    );
    const level = batch.levels[batch.evidenceFrom[last] + j];
    assert.ok(
      Number.isFinite(level) && Math.abs(level - frames[8][drifting]) < 1,
      `level ${level}`,
    );
  });

  test("views a slice of rows as its own batch, with absolute evidence offsets", async () => {
    const scorer = scorerWith(64);
    await scorer.begin();
    await feed(
      scorer,
      Array.from({ length: 9 }, (_, t) => fixture.normalFrame(t)),
      "a",
    );
    const from = scorer.rows;
    const frames = Array.from({ length: 9 }, (_, t) =>
      t === 8 ? fixture.spikedFrame(t, 1) : fixture.normalFrame(t),
    );
    await feed(scorer, frames, "b");
    const whole = await scorer.finish();
    const view = scorer.view(from, whole.size, whole.completedAt);
    assert.equal(view.size, whole.size - from);
    assert.deepEqual(view.streamIds, Array(view.size).fill("b"));
    const F = shape.frameSize;
    assert.deepEqual(
      [...view.scores.subarray(0, F)],
      [...whole.scores.subarray(from * F, (from + 1) * F)],
    );
    const r = view.size - 1;
    assert.deepEqual(
      [...view.flagged.subarray(view.flaggedFrom[r], view.flaggedFrom[r + 1])],
      [...whole.flagged.subarray(whole.flaggedFrom[from + r], whole.flaggedFrom[from + r + 1])],
    );
    assert.equal(view.evidenceFrom[r], whole.evidenceFrom[from + r]);
  });

  test("fails the batch on a failed run, skips the rest, and starts clean after begin", async () => {
    const failing: ScoringModel = {
      ...model,
      metadata: model.metadata,
      provider: model.provider,
      windowsPerRun: 2,
      outputs: model.outputs,
      async score() {
        throw new Error("session released");
      },
      close: async () => {},
    };
    const scorer = new WindowScorer({
      model: failing,
      shape,
      maxBatch: 8,
      flag: { threshold: 0.9, maxFeatures: 10, severityScale: 1 },
    });
    await scorer.begin();
    await feed(
      scorer,
      Array.from({ length: 9 }, (_, t) => fixture.normalFrame(t)),
    );
    assert.match(scorer.failure?.message ?? "", /session released/);
    await assert.rejects(scorer.finish(), /session released/);
    await scorer.begin();
    assert.equal(scorer.failure, undefined);
    assert.equal(scorer.rows, 0);
  });

  test("refuses a batch size outside 1..4096 and a row beyond the batch", async () => {
    assert.throws(
      () => scorerWith(0),
      /'INFERENCE_BATCH_SIZE' must be an integer 1\.\.4096, got 0/,
    );
    const scorer = scorerWith(1);
    await scorer.begin();
    await scorer.add({ streamId: "s", timestamp: 1, receivedAt: 1 });
    assert.equal(scorer.full, true);
    await assert.rejects(
      scorer.add({ streamId: "s", timestamp: 2, receivedAt: 2 }),
      /holds 1 windows/,
    );
  });
});
