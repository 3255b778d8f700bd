import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseModelMetadata } from "../contracts/model.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { doubtFrames } from "./window/reads_running.ts";

// A model trained with a running condition on its first sensor (level about 10 while running):
// a machine at rest sends zeros, which are no anomaly.
let model: ModelFixture;
let sink: AlertSink;
let engine: TestEngine;
/** The model's window size. */
let W = 0;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "press", running: "sensor_0_temp>5" });
  W = parseModelMetadata(
    JSON.parse(await readFile(join(model.dir, "press.json"), "utf8")),
  ).window_size;
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

test("training records the running condition in the model's metadata", async () => {
  const meta = parseModelMetadata(
    JSON.parse(await readFile(join(model.dir, "press.json"), "utf8")),
  );
  assert.deepEqual(meta.running, { feature: "sensor_0_temp", op: ">", value: 5 });
  assert.deepEqual(meta.training.running, { condition: "sensor_0_temp>5", stoppedFrames: 0 });
});

test("a stopped machine's windows are not scored, the stream shows machine_off, its open incident resolves, and scoring resumes a full window after the restart", async () => {
  const stream = streamOn(engine, "press-1");
  // Running, then an upset that opens an incident.
  await stream.feed(10, model.normalFrame);
  await stream.feed(4, (n) => model.spikedFrame(n, 3));
  await waitFor(() => alertsOf("opened").length === 1 || undefined, "the incident opened");
  const scoredBefore = await waitFor(async () => {
    const s = await engine.stats();
    return s.frames.scored === 14 - W + 1 ? s.frames.scored : undefined;
  }, "the running windows scored");

  // The machine stops: 8 frames of zeros. None is scored; the incident resolves.
  await stream.feed(8, stopped);
  const off = await waitFor(async () => {
    const s = await engine.stats();
    return s.machine_off.length === 1 ? s : undefined;
  }, "the stream listed as machine off");
  assert.equal(off.machine_off[0].stream_id, "press-1");
  assert.equal(off.machine_off[0].since, new Date(T0 + 14 * 1000).toISOString());
  await waitFor(() => alertsOf("resolved").length === 1 || undefined, "the incident resolved");
  assert.equal(alertsOf("opened").length, 1, "a stop opens nothing");

  // Running again: the first window is scored once it holds W running frames.
  await stream.feed(W + 2, model.normalFrame);
  const after = await waitFor(async () => {
    const s = await engine.stats();
    return s.frames.scored === scoredBefore + 3 ? s : undefined;
  }, "scoring resumed after a full window of running frames");
  assert.deepEqual(after.machine_off, []);
  assert.equal(alertsOf("opened").length, 1, "the restart opened nothing");
});

test("a dead running-condition sensor: the stream is listed as stopped, and once its other sensors have read as running for a stretch, /stats says so and the engine warns once", async () => {
  const lines: string[] = [];
  const e = await startTestEngine(
    model,
    sink,
    { INCIDENT_QUIET_WINDOWS: "50", LOG_LEVEL: "warn" },
    { write: (line) => lines.push(line) },
  );
  try {
    const stream = streamOn(e, "press-dead");
    await stream.feed(W + 2, model.normalFrame);
    // The condition's sensor reads 0; the machine runs on.
    const dead = (n: number) => {
      const f = model.normalFrame(n);
      f[0] = 0;
      return f;
    };
    const stretch = doubtFrames(W);
    await stream.feed(stretch - 1, dead);
    const before = await idle(e);
    assert.equal(before.machine_off.length, 1, "listed as stopped");
    assert.equal(before.machine_off[0].reads_running, undefined, "not before a full stretch");
    await stream.feed(10, dead);
    const s = await waitFor(async () => {
      const st = await e.stats();
      return st.machine_off[0]?.reads_running ? st : undefined;
    }, "the stop in doubt");
    const doubt = s.machine_off[0].reads_running;
    assert.equal(doubt.sensor, "sensor_0_temp");
    assert.ok(doubt.in_range >= 0.9, `in range ${doubt.in_range}`);
    assert.ok(Date.parse(doubt.since) >= Date.parse(s.machine_off[0].since));
    const warned = lines.filter((l) => l.includes("reads as running"));
    assert.equal(warned.length, 1, lines.join("\n"));
    assert.match(warned[0], /press-dead/);
    // A machine that really stops (zeros) on another stream is not in doubt.
    const real = streamOn(e, "press-real");
    await real.feed(W + 2, model.normalFrame);
    await real.feed(stretch + 10, stopped);
    const both = await idle(e);
    const entry = both.machine_off.find((m: { stream_id: string }) => m.stream_id === "press-real");
    assert.ok(entry, "the real stop listed");
    assert.equal(entry.reads_running, undefined);
  } finally {
    await e.stop();
  }
});

test("an upset and the stop that follows it in one batch: the incident opens, then the stop resolves it", async () => {
  // Frames posted back to back within one long batch delay land in one batch.
  const burst = await startTestEngine(model, sink, {
    INCIDENT_QUIET_WINDOWS: "50",
    BATCH_MAX_DELAY_MS: "1000",
  });
  try {
    const stream = streamOn(burst, "press-2");
    await stream.feed(10, model.normalFrame);
    await waitFor(
      async () => ((await burst.stats()).frames.scored === 10 - W + 1 ? true : undefined),
      "the running windows scored",
    );
    const batchesBefore = (await burst.stats()).batches;
    await stream.feed(4, (n) => model.spikedFrame(n, 3));
    await stream.feed(8, stopped);
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

test("a planned stop and a start that ramps up: the start-up opens an incident, unless RUNNING_SETTLE_FRAMES drops it", async () => {
  /** Every sensor climbs from 0 to its working level over 30 frames (sensor_0 passes 5 halfway). */
  const ramp = (from: number) => (n: number) => {
    const f = model.normalFrame(n);
    for (let i = 0; i < f.length; i++) f[i] *= Math.min(1, (n - from) / 30);
    return f;
  };
  const run = async (settle: string | undefined, streamId: string) => {
    const e = await startTestEngine(model, sink, {
      INCIDENT_QUIET_WINDOWS: "5",
      ...(settle ? { RUNNING_SETTLE_FRAMES: settle } : {}),
    });
    try {
      const stream = streamOn(e, streamId);
      await stream.feed(30, model.normalFrame);
      await stream.feed(20, stopped);
      await idle(e);
      const start = stream.t;
      await stream.feed(20, ramp(start));
      const settling = await idle(e);
      await stream.feed(50, ramp(start));
      const s = await idle(e);
      return { settling, scored: s.frames.scored, machineOff: s.machine_off };
    } finally {
      await e.stop();
    }
  };
  const plain = await run(undefined, "press-settle-0");
  await waitFor(
    () => ofStream("press-settle-0", "opened").length > 0 || undefined,
    "the start-up to open an incident",
  );
  const settled = await run("35", "press-settle-35");
  // Halfway up the ramp the condition holds: without settling it is scored, with it dropped.
  assert.deepEqual(plain.settling.machine_off, []);
  assert.deepEqual(
    settled.settling.machine_off.map((m: { stream_id: string }) => m.stream_id),
    ["press-settle-35"],
    "still listed as stopped while it settles",
  );
  assert.deepEqual(settled.machineOff, [], "running again after the settling frames");
  assert.ok(settled.scored > 30 - W + 1, "scoring resumed after settling");
  assert.ok(settled.scored < plain.scored, "the settling frames were not scored");
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(ofStream("press-settle-35", "opened"), [], "the start-up opened nothing");
});

/** Stream press-3's next frame time (s after T0): its tests follow one another. */
let t3 = 0;

test("one reading at the running threshold inside an upset neither stops the machine nor splits its incident", async () => {
  const stream = streamOn(engine, "press-3", t3);
  const base = (await idle(engine)).frames.scored;
  await stream.feed(10, model.normalFrame);
  await stream.feed(4, (n) => model.spikedFrame(n, 3));
  await waitFor(
    () => ofStream("press-3", "opened").length === 1 || undefined,
    "the incident opened",
  );
  // The running sensor reads exactly its threshold (5) once: that frame fails the condition.
  const dip = model.spikedFrame(stream.t, 3);
  dip[0] = 5;
  await stream.feed(1, () => dip);
  await stream.feed(W + 4, (n) => model.spikedFrame(n, 3));
  const s = await idle(engine);
  // The dip is not scored and restarts the window: W - 1 windows of the upset are not scored.
  assert.equal(s.frames.scored, base + 14 - W + 1 + 5);
  assert.deepEqual(s.machine_off, [], "a single failing frame is no stop");
  await waitFor(async () => {
    const a = (await engine.stats()).alerts;
    return a.outbox === 0 && a.delivered === a.generated ? true : undefined;
  }, "every alert delivered");
  assert.equal(ofStream("press-3", "opened").length, 1, "one upset, one incident");
  assert.equal(ofStream("press-3", "resolved").length, 0);
  t3 = stream.t;
});

test("a confirmed stop (RUNNING_STOP_FRAMES failing frames in a row) resolves the incident from its first failing frame", async () => {
  const stream = streamOn(engine, "press-3", t3);
  const first = stream.t;
  await stream.feed(2, stopped);
  assert.deepEqual((await idle(engine)).machine_off, [], "two failing frames: not yet");
  await stream.feed(1, stopped);
  const s = await idle(engine);
  assert.deepEqual(s.machine_off, [
    { stream_id: "press-3", since: new Date(T0 + first * 1000).toISOString() },
  ]);
  await waitFor(
    () => ofStream("press-3", "resolved").length === 1 || undefined,
    "the incident resolved",
  );
  assert.equal(ofStream("press-3", "opened").length, 1);
});

test("a stream silent longer than INCIDENT_STALE_MS of stream time restarts afresh: no window spans the gap and the training history's incident ends before it", async () => {
  const quiet = await startTestEngine(model, sink, {
    INCIDENT_QUIET_WINDOWS: "50",
    INCIDENT_STALE_MS: "1000",
    HISTORY_EVERY_N: "1",
  });
  try {
    const stream = streamOn(quiet, "press-4");
    await stream.feed(10, model.normalFrame);
    await stream.feed(4, (n) => model.spikedFrame(n, 3));
    const before = (await idle(quiet)).frames.scored;
    assert.equal(before, 14 - W + 1);
    const lastBefore = T0 + (stream.t - 1) * 1000;
    // The line is shut down without sending zeros; it restarts 8 h later, still upset.
    stream.t += 8 * 3600;
    const restart = T0 + stream.t * 1000;
    await stream.feed(12, (n) => model.spikedFrame(n, 3));
    const s = await idle(quiet);
    assert.equal(s.frames.scored, before + 12 - W + 1, "no window holds frames from both sides");
    assert.deepEqual(s.machine_off, [], "the machine runs after the gap");
    await quiet.engine.shutdown(1000);
    const index = JSON.parse(
      await readFile(join(quiet.dataDir, "history", "press", "index.json"), "utf8"),
    );
    const incidents = Object.values(index.incidents) as { first: number; last: number }[];
    assert.ok(incidents.length >= 1, "the upset is recorded as an incident");
    for (const i of incidents) {
      assert.ok(i.last <= lastBefore || i.first >= restart, "no incident spans the gap");
    }
  } finally {
    await quiet.stop();
  }
});

/**
 * Stream `streamId` on `e`, one frame a second from `t` s after T0. `feed(count, frame)` posts its
 * next `count` frames and asserts each is taken (202); the frame at time `t` holds `frame(t + 1)`,
 * as this file's tests have always made them.
 */
function streamOn(e: TestEngine, streamId: string, t = 0) {
  return {
    /** The next frame's time, in seconds after T0. */
    t,
    async feed(count: number, frame: (n: number) => Float32Array): Promise<void> {
      for (let i = 0; i < count; i++, this.t++) {
        const body = jsonFrame(model.featureNames, frame(this.t + 1), {
          stream_id: streamId,
          timestamp: T0 + this.t * 1000,
        });
        assert.equal((await e.post(body)).status, 202);
      }
    },
  };
}

/** The engine's stats once every posted frame is taken and no batch is in progress. */
function idle(e: TestEngine) {
  return waitFor(async () => {
    const s = await e.stats();
    const busy = e.engine.state.pipeline?.lanes.some((l) => l.batcher.busy);
    return s.queue.depth === 0 && !busy ? s : undefined;
  }, "the engine idle");
}

function ofStream(streamId: string, event: string) {
  return alertsOf(event).filter((a) => a.stream_id === streamId);
}

function alertsOf(event: string) {
  return sink.requests.map((r) => JSON.parse(r.body)).filter((a) => a.event === event);
}
