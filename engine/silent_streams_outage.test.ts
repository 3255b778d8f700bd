// A line that goes dark a second time is listed as silent as soon as the first time: an outage does not enter its interval.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { SEEN_STREAMS_FILE } from "./window/seen_streams.ts";

const STALE_MS = 60_000;
let model: ModelFixture;
let sink: AlertSink;
let dataDir: string;
/** The engines' clock, moved by the test. */
let now = Date.UTC(2026, 11, 7, 8);
const T0 = now;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "press" });
  sink = await startAlertSink();
  dataDir = await mkdtemp(join(tmpdir(), "engine-outage-"));
});
after(async () => {
  await sink?.close();
  await model?.remove();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** An engine on the test's clock and data directory (so a second one reads what the first saved). */
const startEngine = () =>
  startTestEngine(
    model,
    sink,
    // A queue for every frame the test sends: none is refused while the batcher catches up.
    { INCIDENT_STALE_MS: String(STALE_MS), DATA_DIR: dataDir, QUEUE_MAX_SIZE: "1024" },
    { clock: { now: () => now } },
  );

/** Sends the stream's frames `from`..`to` a second apart (stream time = the engine's clock). */
async function run(engine: TestEngine, streamId: string, from: number, to: number) {
  for (let n = from; n <= to; n++) {
    now = T0 + n * 1000;
    const res = await engine.post(
      jsonFrame(model.featureNames, model.normalFrame(n), {
        stream_id: streamId,
        timestamp: T0 + n * 1000,
      }),
    );
    assert.equal(res.status, 202);
  }
}

const silentIds = async (engine: TestEngine) =>
  ((await engine.stats()).silent as { stream_id: string }[]).map((s) => s.stream_id);

test("a 1 Hz line dark for 4 times INCIDENT_STALE_MS, back, and dark again is listed as silent past INCIDENT_STALE_MS both times, also after a restart", async () => {
  const engine = await startEngine();
  let stopped = false;
  try {
    // Two minutes at 1 Hz, then dark for 4 minutes: listed once a minute has passed.
    await run(engine, "line-w", 0, 120);
    now = T0 + 120_000 + STALE_MS + 1000;
    assert.deepEqual(await silentIds(engine), ["line-w"], "listed the first time");
    // Back at 1 Hz for two minutes (stream time goes on past the gap), then dark again.
    await run(engine, "line-w", 360, 480);
    assert.deepEqual(await silentIds(engine), []);
    now = T0 + 480_000 + STALE_MS + 1000;
    assert.deepEqual(
      await silentIds(engine),
      ["line-w"],
      "listed past INCIDENT_STALE_MS the second time too, not 10 times the first outage later",
    );
    await engine.engine.shutdown(1000);
    stopped = true;
  } finally {
    if (!stopped) await engine.stop();
  }
  // What the engine saved is the line's 1 s interval, not its outage.
  const saved = JSON.parse(await readFile(join(dataDir, SEEN_STREAMS_FILE), "utf8")) as {
    streams: { stream_id: string; step_ms: number }[];
  };
  const step = saved.streams.find((s) => s.stream_id === "line-w")?.step_ms;
  assert.ok(step !== undefined && step <= 1000, `step_ms ${step} is the line's interval`);
  // The next start lists it by that interval.
  const next = await startEngine();
  try {
    assert.deepEqual(await silentIds(next), ["line-w"], "listed after a restart");
  } finally {
    await next.stop();
  }
});
