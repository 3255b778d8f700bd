import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseModelMetadata } from "../contracts/model.ts";
import { type AlertSink, alertsOf as sinkAlertsOf, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { incidentStateDir } from "./alert/incident_state_store.ts";

let model: ModelFixture;
let sink: AlertSink;
let root: string;
const engines: TestEngine[] = [];

before(async () => {
  model = await trainFixtureModel({ features: 200, name: "incidents_200" });
  sink = await startAlertSink();
  root = await mkdtemp(join(tmpdir(), "engine-incidents-"));
});
after(async () => {
  for (const e of engines) await e.stop();
  await sink?.close();
  await model?.remove();
  await rm(root, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 10, 24, 9);
let step = 0;
/** The frame of second `t` of a stream: normal, spiked (`spiked` sensors) or uniform random. */
function frame(stream_id: string, t: number, kind: "normal" | "spiked" | "uniform" = "normal") {
  const values =
    kind === "spiked"
      ? model.spikedFrame(step++, 3)
      : kind === "uniform"
        ? Float32Array.from(model.featureNames, () => Math.random())
        : model.normalFrame(step++);
  return jsonFrame(model.featureNames, values, { stream_id, timestamp: T0 + Math.round(t * 1000) });
}

/** Alerts the sink accepted for `stream`, parsed by the strict contract, first delivery of each id. */
const alertsOf = (stream: string) => sinkAlertsOf(sink, stream);

async function start(env: Record<string, string> = {}) {
  const engine = await startTestEngine(model, sink, {
    INCIDENT_QUIET_WINDOWS: "3",
    ...env,
  });
  engines.push(engine);
  return engine;
}

/** `step`: seconds of stream time between frames (a stream is silent after 10 of its steps too). */
async function play(
  engine: TestEngine,
  stream: string,
  kinds: ("normal" | "spiked")[],
  from = 0,
  step = 1,
) {
  for (const [i, kind] of kinds.entries()) {
    const response = await engine.post(frame(stream, (from + i) * step, kind));
    assert.equal(response.status, 202, await response.clone().text());
  }
}

const normal = (n: number) => Array<"normal">(n).fill("normal");

test("engine raises one incident for a spike: opened with evidence, then resolved", async () => {
  const engine = await start();
  // 5 frames to fill the window, 2 spiked frames (flagged in 6 windows), then quiet windows.
  await play(engine, "one", [...normal(5), "spiked", "spiked", ...normal(9)]);
  await waitFor(() => alertsOf("one").length === 2, "opened and resolved");
  await waitFor(async () => (await engine.stats()).frames.scored === 12, "every window scored");
  const [opened, resolved] = alertsOf("one");
  assert.equal(opened.event, "opened");
  assert.equal(opened.anomaly_detected, true);
  assert.equal(opened.incident_started_at, new Date(T0 + 5000).toISOString());
  // The spiked sensors rank first (the model's cross-sensor residual may flag others too).
  assert.deepEqual(
    opened.anomalous_features
      .slice(0, 3)
      .map((f) => f.feature)
      .sort(),
    model.featureNames.slice(0, 3).sort(),
  );
  const f = opened.anomalous_features[0];
  assert.equal(f.window.length, 5);
  assert.equal(f.value, f.window[4]);
  assert.ok(f.value > 1000, "the spiked reading");
  // The training CLI's models have severity and statistic outputs and typical ranges.
  const meta = parseModelMetadata(
    JSON.parse(await readFile(join(model.dir, `${model.name}.json`), "utf8")),
  );
  assert.ok(meta.severity_output_name && meta.statistics && meta.typical);
  assert.ok(meta.statistics.includes(f.statistic), f.statistic);
  assert.ok(f.severity > 10, "from the severity output: it does not saturate at score 1");
  assert.deepEqual(f.typical, {
    low: meta.typical.low[f.feature_idx],
    high: meta.typical.high[f.feature_idx],
  });
  assert.equal(resolved.event, "resolved");
  assert.equal(resolved.anomaly_detected, false);
  assert.equal(resolved.incident_id, opened.incident_id);
  // Windows ending at seconds 5..10 hold a spike; 11, 12, 13 are the three quiet ones.
  assert.equal(resolved.frame_timestamp, new Date(T0 + 13_000).toISOString());
  assert.ok(resolved.num_anomalous_features >= opened.num_anomalous_features);
  assert.deepEqual(
    resolved.anomalous_features.slice(0, 3).map((f) => f.feature_idx),
    opened.anomalous_features.slice(0, 3).map((f) => f.feature_idx),
    "the peak evidence keeps the spiked sensors first",
  );
  assert.equal((await engine.stats()).alerts.outbox, 0);
});

test("engine resolves the incident of a stream that stops sending after INCIDENT_STALE_MS", async () => {
  const engine = await start({ INCIDENT_STALE_MS: "1000" });
  // Frames 50 ms apart: 10 of its steps are within INCIDENT_STALE_MS, which decides.
  await play(engine, "silent", [...normal(5), "spiked", "spiked"], 0, 0.05);
  await waitFor(() => alertsOf("silent").length === 1, "the opened alert");
  assert.equal(engine.engine.state.pipeline!.pipeline.openIncidents, 1);
  await waitFor(() => alertsOf("silent").length === 2, "the resolved alert", 10_000);
  const [opened, resolved] = alertsOf("silent");
  assert.equal(resolved.event, "resolved");
  assert.equal(resolved.incident_id, opened.incident_id);
  assert.equal(resolved.frame_timestamp, new Date(T0 + 300).toISOString(), "its last window");
  assert.equal(engine.engine.state.pipeline!.pipeline.openIncidents, 0);
});

test("a stream forgotten while it was confirming leaves no saved state to confirm with after a restart", async () => {
  const engine = await start({ INCIDENT_STALE_MS: "1000" });
  // One anomalous window: confirming (K of N not met), no incident, its state saved within 1 s.
  // Frames 50 ms apart: 10 of its steps are within INCIDENT_STALE_MS, which decides.
  await play(engine, "confirming", [...normal(5), "spiked"], 0, 0.05);
  const file = join(incidentStateDir(engine.dataDir, model.name), "confirming.json");
  await waitFor(
    () =>
      stat(file).then(
        () => true,
        () => undefined,
      ),
    "its state saved",
  );
  // Silent past INCIDENT_STALE_MS: forgotten without an event, and its saved state with it (a
  // restart restored it, and one more anomalous window opened an incident dated before).
  await waitFor(
    () =>
      stat(file).then(
        () => undefined,
        () => true,
      ),
    "its saved state removed",
    10_000,
  );
  assert.deepEqual(alertsOf("confirming"), []);
});

test("engine in ALERT_MODE=frame sends one alert per anomalous window, with evidence", async () => {
  const engine = await start({ ALERT_MODE: "frame" });
  await play(engine, "frames", [...normal(5), "spiked", ...normal(6)]);
  await waitFor(async () => (await engine.stats()).frames.scored === 8, "every window scored");
  await waitFor(() => alertsOf("frames").length === 5, "an alert per window holding the spike");
  const alerts = alertsOf("frames");
  for (const a of alerts) {
    assert.equal(a.incident_id, undefined);
    assert.equal(a.event, undefined);
    assert.equal(a.anomalous_features[0].window.length, 5);
  }
  assert.equal(new Set(alerts.map((a) => a.alert_id)).size, 5);
  const windows = alerts.map((a) => a.frame_timestamp).sort();
  assert.deepEqual(
    windows,
    [5, 6, 7, 8, 9].map((t) => new Date(T0 + t * 1000).toISOString()),
  );
});

test("engine fed uniform random frames keeps one open incident with bounded alerts and state", async () => {
  const engine = await start({ MAX_ALERT_FEATURES: "20", INCIDENT_UPDATE_MIN_MS: "10000" });
  for (let t = 0; t < 40; t++) {
    const response = await engine.post(frame("noise", t, "uniform"));
    assert.equal(response.status, 202);
  }
  await waitFor(async () => (await engine.stats()).frames.scored === 36, "every window scored");
  await engine.engine.state.pipeline!.pipeline.flush();
  await waitFor(async () => (await engine.stats()).alerts.outbox === 0, "alerts delivered");
  const alerts = alertsOf("noise");
  assert.equal(alerts[0].event, "opened");
  assert.ok(
    alerts.slice(1).every((a) => a.event === "updated" && a.incident_id === alerts[0].incident_id),
  );
  // 36 windows over 35 s of stream time: at most one update per 10 s.
  assert.ok(alerts.length <= 4, `${alerts.length} alerts`);
  assert.ok(alerts[0].num_anomalous_features > 150, "most sensors flagged");
  assert.ok(alerts.every((a) => a.anomalous_features.length <= 20));
  assert.equal(engine.engine.state.pipeline!.pipeline.openIncidents, 1);
  const dir = incidentStateDir(engine.dataDir, model.name);
  const [file] = await readdir(dir);
  assert.ok((await stat(join(dir, file))).size < 40_000, "the saved state stays small");
});

test("engine process keeps an open incident through a crash and resolves it after restart", async () => {
  const dataDir = join(root, "restart");
  const env = {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    DATA_DIR: dataDir,
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "50",
    INCIDENT_QUIET_WINDOWS: "3",
  };
  const post = (port: number, body: string) =>
    fetch(`http://127.0.0.1:${port}/data-enqueue`, { method: "POST", body });
  const first = spawnEngine("node", env);
  try {
    const port = await first.port();
    await waitReady(port);
    for (let t = 0; t < 8; t++) {
      const response = await post(port, frame("crash", t, t >= 5 ? "spiked" : "normal"));
      assert.equal(response.status, 202);
    }
    await waitFor(() => alertsOf("crash").length === 1, "the opened alert");
    // The state of the last spiked window is saved once the batch that scored it is handed on.
    await waitFor(async () => {
      const text = await readFile(
        join(incidentStateDir(dataDir, model.name), "crash.json"),
        "utf8",
      );
      return JSON.parse(text).snapshot.last === T0 + 7000;
    }, "the saved state of the last window");
  } finally {
    await first.kill("SIGKILL");
  }
  const second = spawnEngine("node", env);
  try {
    const port = await second.port();
    await waitReady(port);
    // The window refills after the restart: 5 frames, then 3 quiet windows (the spike ended).
    for (let t = 8; t < 15; t++) {
      const response = await post(port, frame("crash", t));
      assert.equal(response.status, 202);
    }
    await waitFor(() => alertsOf("crash").length === 2, "the resolved alert");
    const [opened, resolved] = alertsOf("crash");
    assert.equal(opened.event, "opened");
    assert.equal(resolved.event, "resolved");
    assert.equal(resolved.incident_id, opened.incident_id);
    assert.equal(resolved.incident_started_at, opened.incident_started_at);
    assert.equal(resolved.frame_timestamp, new Date(T0 + 14_000).toISOString());
  } finally {
    await second.kill("SIGTERM");
  }
});

/** Opens an incident on `stream` (seconds 0..7), then starts another engine on the same DATA_DIR. */
async function restartWithOpenIncident(stream: string) {
  const env = { DATA_DIR: join(root, stream) };
  const first = await start(env);
  await play(first, stream, [...normal(5), "spiked", "spiked", "spiked"]);
  await waitFor(() => alertsOf(stream).length === 1, "the opened alert");
  // A clean stop: every accepted frame scored, the incident's state saved with its last window.
  await first.engine.shutdown(1000);
  return start(env);
}

test("engine restarted resolves the restored incident when its stream comes back behind it (a clock set back), and raises the next upset", async () => {
  const engine = await restartWithOpenIncident("clock-back");
  // The producer's clock is an hour behind now: the engine's frame order starts afresh, so its
  // frames are taken; the window after the restart is older than the incident's last.
  await play(engine, "clock-back", [...normal(5), "spiked", "spiked", ...normal(9)], -3600);
  await waitFor(() => alertsOf("clock-back").length === 4, "resolved, opened and resolved");
  const [opened, resolved, next, nextResolved] = alertsOf("clock-back");
  assert.deepEqual(
    [resolved.event, resolved.incident_id, resolved.frame_timestamp],
    ["resolved", opened.incident_id, new Date(T0 + 7000).toISOString()],
    "stale, at its last window",
  );
  assert.equal(next.event, "opened");
  assert.equal(next.incident_started_at, new Date(T0 - 3_595_000).toISOString());
  assert.deepEqual([nextResolved.event, nextResolved.incident_id], ["resolved", next.incident_id]);
  assert.equal(engine.engine.state.pipeline!.pipeline.openIncidents, 0);
});

test("engine restarted after a silence past INCIDENT_STALE_MS resolves the restored incident before the next upset opens its own", async () => {
  const engine = await restartWithOpenIncident("gap");
  // Two hours later (stream time) the line runs again, an upset as it starts: as without a restart.
  await play(engine, "gap", [...normal(5), "spiked", "spiked", ...normal(8)], 7200);
  await waitFor(() => alertsOf("gap").length === 4, "resolved, opened and resolved");
  const [opened, resolved, next, nextResolved] = alertsOf("gap");
  assert.deepEqual(
    [resolved.event, resolved.incident_id, resolved.frame_timestamp],
    ["resolved", opened.incident_id, new Date(T0 + 7000).toISOString()],
  );
  assert.equal(next.event, "opened");
  assert.notEqual(next.incident_id, opened.incident_id);
  assert.equal(next.incident_started_at, new Date(T0 + 7_205_000).toISOString());
  assert.deepEqual(
    [nextResolved.event, nextResolved.incident_id, nextResolved.frame_timestamp],
    ["resolved", next.incident_id, new Date(T0 + 7_213_000).toISOString()],
  );
});

test("engine pipeline flush rejects while an incident's state cannot be kept, and keeps its alert once it can", async () => {
  const engine = await start();
  // The state store's folder disappears under the running engine: saving the opened incident fails.
  await rm(incidentStateDir(engine.dataDir, model.name), { recursive: true, force: true });
  await play(engine, "lost", [...normal(5), "spiked", "spiked"]);
  await waitFor(async () => (await engine.stats()).frames.scored === 3, "windows scored");
  const pipeline = engine.engine.state.pipeline!.pipeline;
  await assert.rejects(pipeline.flush(), { code: "ENOENT" });
  // Held, not dropped: every flush rejects until the state is saved, then the alert goes out.
  await assert.rejects(pipeline.flush(), { code: "ENOENT" });
  await mkdir(incidentStateDir(engine.dataDir, model.name));
  await pipeline.flush();
  await waitFor(() => alertsOf("lost").some((a) => a.event === "opened"), "the held alert sent");
});

test("a drifting sensor is judged against its running level: its trend is quiet, a step on it is an incident shown in its own units", async () => {
  const drift = await trainFixtureModel({ features: 30, drifting: 2, name: "drifting_30" });
  try {
    const meta = parseModelMetadata(
      JSON.parse(await readFile(join(drift.dir, "drifting_30.json"), "utf8")),
    );
    assert.deepEqual(meta.baseline?.features, drift.drifting);
    const engine = await startTestEngine(drift, sink, { INCIDENT_QUIET_WINDOWS: "3" });
    engines.push(engine);
    const f = drift.drifting[0];
    const send = async (t: number, bump: number) => {
      // 200 frames after the history: the trend has taken the sensor 4 units (about 70 noise sd)
      // past anything it showed.
      const values = drift.normalFrame(200 + t);
      values[f] += bump;
      const body = jsonFrame(drift.featureNames, values, {
        stream_id: "drift",
        timestamp: T0 + t * 1000,
      });
      const response = await engine.post(body);
      assert.equal(response.status, 202, await response.clone().text());
      return values[f];
    };
    for (let t = 0; t < 40; t++) await send(t, 0);
    await waitFor(async () => (await engine.stats()).frames.scored >= 36, "40 frames scored");
    assert.equal(alertsOf("drift").length, 0, "the trend going on raises nothing");
    // A step of 1 (about 17 noise sd) that stays.
    let last = 0;
    for (let t = 40; t < 46; t++) last = await send(t, 1);
    await waitFor(() => alertsOf("drift").length >= 1, "an incident opens");
    const [opened] = alertsOf("drift");
    assert.equal(opened.event, "opened");
    const sensor = opened.anomalous_features.find((a) => a.feature_idx === f);
    assert.ok(sensor, JSON.stringify(opened.anomalous_features));
    // The first window that holds the step sees it move (dynamics) or sit off its level (level).
    assert.ok(["level", "dynamics"].includes(sensor.statistic), sensor.statistic);
    // The readings as sent, and a typical range around the sensor's level there, not the
    // training history's (which the trend left long ago).
    assert.ok(sensor.value > meta.typical!.high[f] + 3, `value ${sensor.value}`);
    assert.ok(
      sensor.window.every((x) => x > 10 + 3),
      JSON.stringify(sensor.window),
    );
    const typical = sensor.typical!;
    assert.ok(typical.high < sensor.value, `${JSON.stringify(typical)} vs ${sensor.value}`);
    assert.ok(typical.low > sensor.value - 2, `${JSON.stringify(typical)} vs ${sensor.value}`);
    assert.ok(Math.abs(last - sensor.value) < 1.5);
  } finally {
    await drift.remove();
  }
});

test("a sensor at its instrument's overload value (9.9e37) or the float32 limit opens an incident naming it: the graph cannot score such a reading, and that is no reason to stay silent", async () => {
  const engine = await start();
  for (const [stream, value] of [
    ["overload", 9.9e37],
    ["limit", 3.4e38],
  ] as const) {
    for (let t = 0; t < 12; t++) {
      const values = model.normalFrame(step++);
      if (t >= 5) values[7] = value;
      const body = jsonFrame(model.featureNames, values, {
        stream_id: stream,
        timestamp: T0 + t * 1000,
      });
      const response = await engine.post(body);
      assert.equal(response.status, 202, await response.clone().text());
    }
    await waitFor(() => alertsOf(stream).length >= 1, `the ${stream} incident`);
    const [opened] = alertsOf(stream);
    assert.equal(opened.event, "opened");
    const first = opened.anomalous_features[0];
    assert.equal(first.feature_idx, 7);
    assert.deepEqual([first.score, first.severity], [1, 1000]);
    assert.equal(first.value, value, "the reading as it arrived");
    assert.equal(opened.kind, "sensor", "far outside the sensor's typical range, alone");
  }
});
