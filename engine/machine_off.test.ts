import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseModelMetadata } from "../contracts/model.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";

// A model trained with a running condition on its first sensor (level about 10 while running):
// a machine at rest sends zeros, which are no anomaly.
let model: ModelFixture;
let sink: AlertSink;
let engine: TestEngine;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "press", running: "sensor_0_temp>5" });
  sink = await startAlertSink();
  engine = await startTestEngine(model, sink, { INCIDENT_QUIET_WINDOWS: "50" });
});
after(async () => {
  await engine?.stop();
  await sink?.close();
  await model?.remove();
});

const T0 = Date.UTC(2026, 11, 3, 6);
const stopped = () => new Float32Array(12);
const send = (t: number, values: Float32Array) =>
  engine.post(
    jsonFrame(model.featureNames, values, { stream_id: "press-1", timestamp: T0 + t * 1000 }),
  );

test("training records the running condition in the model's metadata", async () => {
  const meta = parseModelMetadata(
    JSON.parse(await readFile(join(model.dir, "press.json"), "utf8")),
  );
  assert.deepEqual(meta.running, { feature: "sensor_0_temp", op: ">", value: 5 });
  assert.deepEqual(meta.training.running, { condition: "sensor_0_temp>5", stoppedFrames: 0 });
});

test("a stopped machine's windows are not scored, the stream shows machine_off, its open incident resolves, and scoring resumes a full window after the restart", async () => {
  const W = parseModelMetadata(
    JSON.parse(await readFile(join(model.dir, "press.json"), "utf8")),
  ).window_size;
  let t = 0;
  // Running, then an upset that opens an incident.
  for (let i = 0; i < 10; i++) assert.equal((await send(t++, model.normalFrame(t))).status, 202);
  for (let i = 0; i < 4; i++) assert.equal((await send(t++, model.spikedFrame(t, 3))).status, 202);
  await waitFor(() => alertsOf("opened").length === 1 || undefined, "the incident opened");
  const scoredBefore = await waitFor(async () => {
    const s = await engine.stats();
    return s.frames.scored === 14 - W + 1 ? s.frames.scored : undefined;
  }, "the running windows scored");

  // The machine stops: 8 frames of zeros. None is scored; the incident resolves.
  for (let i = 0; i < 8; i++) assert.equal((await send(t++, stopped())).status, 202);
  const off = await waitFor(async () => {
    const s = await engine.stats();
    return s.machine_off.length === 1 ? s : undefined;
  }, "the stream listed as machine off");
  assert.equal(off.machine_off[0].stream_id, "press-1");
  assert.equal(off.machine_off[0].since, new Date(T0 + 14 * 1000).toISOString());
  await waitFor(() => alertsOf("resolved").length === 1 || undefined, "the incident resolved");
  assert.equal(alertsOf("opened").length, 1, "a stop opens nothing");

  // Running again: the first window is scored once it holds W running frames.
  for (let i = 0; i < W + 2; i++) assert.equal((await send(t++, model.normalFrame(t))).status, 202);
  const after = await waitFor(async () => {
    const s = await engine.stats();
    return s.frames.scored === scoredBefore + 3 ? s : undefined;
  }, "scoring resumed after a full window of running frames");
  assert.deepEqual(after.machine_off, []);
  assert.equal(alertsOf("opened").length, 1, "the restart opened nothing");
});

test("an upset and the stop that follows it in one batch: the incident opens, then the stop resolves it", async () => {
  // Frames posted back to back within one long batch delay land in one batch.
  const burst = await startTestEngine(model, sink, {
    INCIDENT_QUIET_WINDOWS: "50",
    BATCH_MAX_DELAY_MS: "1000",
  });
  try {
    const W = parseModelMetadata(
      JSON.parse(await readFile(join(model.dir, "press.json"), "utf8")),
    ).window_size;
    const post = (t: number, values: Float32Array) =>
      burst.post(
        jsonFrame(model.featureNames, values, { stream_id: "press-2", timestamp: T0 + t * 1000 }),
      );
    let t = 0;
    for (let i = 0; i < 10; i++) assert.equal((await post(t++, model.normalFrame(t))).status, 202);
    await waitFor(
      async () => ((await burst.stats()).frames.scored === 10 - W + 1 ? true : undefined),
      "the running windows scored",
    );
    const batchesBefore = (await burst.stats()).batches;
    for (let i = 0; i < 4; i++)
      assert.equal((await post(t++, model.spikedFrame(t, 3))).status, 202);
    for (let i = 0; i < 8; i++) assert.equal((await post(t++, stopped())).status, 202);
    const stats = await waitFor(async () => {
      const s = await burst.stats();
      return s.frames.scored === 10 - W + 1 + 4 ? s : undefined;
    }, "the upset's windows scored");
    assert.equal(stats.batches, batchesBefore + 1, "the upset and the stop were one batch");
    assert.equal(stats.machine_off.length, 1);
    const ofStream = (event: string) => alertsOf(event).filter((a) => a.stream_id === "press-2");
    await waitFor(() => ofStream("resolved").length === 1 || undefined, "the incident resolved");
    assert.equal(ofStream("opened").length, 1);
    assert.equal(ofStream("resolved")[0].incident_id, ofStream("opened")[0].incident_id);
    assert.equal(burst.engine.state.pipeline?.lanes[0].pipeline.openIncidents, 0);
  } finally {
    await burst.stop();
  }
});

function alertsOf(event: string) {
  return sink.requests.map((r) => JSON.parse(r.body)).filter((a) => a.event === event);
}
