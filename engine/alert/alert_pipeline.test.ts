import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { IncidentTracker } from "../../scoring/incident_tracker.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { startAlertSink } from "../_test/alert_sink.ts";
import { waitFor } from "../_test/wait_for.ts";
import type { ScoredBatch } from "../batch/window_scorer.ts";
import { HistoryStore } from "../evidence/history_store.ts";
import { IncidentEvidence } from "../evidence/incident_evidence.ts";
import { AlertDispatcher } from "./alert_dispatcher.ts";
import { AlertPipeline } from "./alert_pipeline.ts";
import { createAlertSender } from "./alert_sender.ts";
import { FileIncidentStateStore } from "./incident_state_store.ts";
import { Outbox } from "./outbox.ts";

const T0 = Date.UTC(2026, 10, 24, 9);

/** One scored window of a 2-sensor model: `sensor` (0 unless told; or several) flagged, or nothing. */
function window(
  streamId: string,
  second: number,
  flagged: boolean,
  sensor: number | number[] = 0,
): ScoredBatch {
  const f = flagged ? [sensor].flat() : [];
  return {
    size: 1,
    nFeatures: 2,
    scores: Float32Array.of(0.999, 0.1),
    severity: undefined,
    statistic: undefined,
    flagged: Int32Array.from(f),
    flaggedFrom: Uint32Array.of(0, f.length),
    evidenceFrom: Uint32Array.of(0, f.length),
    windows: new Float32Array(2 * f.length),
    levels: Float32Array.from(f, () => Number.NaN),
    streamIds: [streamId],
    timestamps: Float64Array.of(T0 + second * 1000),
    receivedAt: Float64Array.of(performance.now()),
    spans: [undefined],
    inferenceMs: 1,
    completedAt: performance.now(),
  };
}

/**
 * An incident-mode pipeline on a real state folder, outbox and alert sink; `lines` are its log
 * lines. The state folder exists after `start()`; removing it makes every save fail (ENOENT).
 * `stateDir`, `features` and `version`: restart on another engine's state with that model.
 */
async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  {
    stateDir: dirOfState,
    features = ["a", "b"],
    version = "m@1",
    frameMode = false,
    maxBytes,
    ...options
  }: {
    /** `ALERT_MODE=frame`: an alert per anomalous window, no tracker, no state store. */
    frameMode?: boolean;
    maxHeldAlerts?: number;
    maxHeldBytes?: number;
    staleMs?: number;
    now?: () => number;
    stateDir?: string;
    features?: string[];
    version?: string;
    replays?: boolean;
    /** `ALERT_MAX_BYTES`. */
    maxBytes?: number;
    evidence?: IncidentEvidence;
  } = {},
) {
  const dir = await mkdtemp(join(tmpdir(), "alert-pipeline-"));
  const stateDir = dirOfState ?? join(dir, "incidents");
  const sink = await startAlertSink();
  const outbox = await Outbox.open({ dir: join(dir, "outbox") });
  const lines: { level: string; msg: string; [field: string]: unknown }[] = [];
  const log = createLogger({
    service: "engine",
    level: "info",
    write: (line) => void lines.push(JSON.parse(line)),
  });
  const send = createAlertSender({
    url: sink.url,
    maxRetries: 1,
    retryBaseMs: 5,
    retryMaxMs: 10,
    timeoutMs: 5000,
  });
  const dispatcher = new AlertDispatcher({
    outbox,
    send,
    concurrency: 1,
    maxAlerts: 100,
    roundBaseMs: 20,
    roundMaxMs: 50,
    log,
  });
  const incidents = {
    mode: "incident" as const,
    tracker: new IncidentTracker({
      nFeatures: features.length,
      modelVersion: version,
      confirmK: 1,
      confirmN: 1,
      quietWindows: 2,
      updateMinMs: 3_600_000,
      updateSeverityRise: 100,
      maxFeatures: 2,
    }),
    store: new FileIncidentStateStore(stateDir),
  };
  const common = {
    context: {
      featureNames: features,
      threshold: 0.9,
      modelName: "m",
      modelVersion: version,
      maxBytes,
    },
    windowSize: 2,
    severityScale: 10,
    dispatcher,
    log,
    now: () => Date.now(),
  };
  const pipeline = new AlertPipeline(
    frameMode ? { ...common, mode: "frame", ...options } : { ...common, ...incidents, ...options },
  );
  await pipeline.start();
  dispatcher.start();
  t.after(async () => {
    await pipeline.stop();
    dispatcher.close();
    await outbox.close().catch(() => {});
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  });
  /** The alerts the sink received, parsed, in order. */
  const bodies = () => sink.requests.map((r) => JSON.parse(r.body));
  /** `event:stream` of each alert the sink received, in order. */
  const received = () =>
    sink.requests.map((r) => JSON.parse(r.body)).map((b) => `${b.event}:${b.stream_id}`);
  const said = (msg: string) => lines.filter((l) => l.msg.startsWith(msg));
  /**
   * `bodies` without a second delivery of one alert (here the dispatcher starts after the
   * pipeline, so an alert kept with a restored state is queued twice: resubmitted, and found in
   * the outbox).
   */
  const distinct = () =>
    bodies().filter((b, i, all) => all.findIndex((o) => o.alert_id === b.alert_id) === i);
  return { stateDir, outbox, sink, pipeline, lines, received, bodies, distinct, said };
}

test("alertPipeline holds a batch's state and alerts while saves fail, and keeps them in order once they work", async (t) => {
  const { stateDir, pipeline, received, said } = await setup(t);
  await rm(stateDir, { recursive: true });
  pipeline.scored(window("s", 0, true));
  await assert.rejects(pipeline.flush(), { code: "ENOENT" });
  pipeline.scored(window("s", 1, false));
  pipeline.scored(window("s", 2, false));
  await assert.rejects(pipeline.flush(), { code: "ENOENT" }, "still not kept: still rejects");
  assert.equal(pipeline.heldAlerts, 2, "opened and resolved are held");
  assert.deepEqual(received(), []);
  assert.equal(said("could not keep incident state").length, 1, "one warning per outage");

  await mkdir(stateDir);
  // No batch follows: the once-a-second tick retries on its own.
  await waitFor(() => received().length === 2, "the held alerts delivered");
  assert.deepEqual(received(), ["opened:s", "resolved:s"]);
  await pipeline.flush();
  assert.equal(pipeline.heldAlerts, 0);
  assert.equal(pipeline.droppedAlerts, 0);
  assert.equal(said("incident state and alerts kept again").length, 1);
  assert.deepEqual(await readdir(stateDir), [], "the resolved stream's state was deleted");
});

test("alertPipeline holds only the alerts of a stream whose state cannot be saved, and delivers the other streams'", async (t) => {
  const { stateDir, pipeline, received, said } = await setup(t);
  // A folder where stream "bad"'s state file goes: its save fails (EISDIR) however often tried.
  await mkdir(join(stateDir, "bad.json"));
  pipeline.scored(window("bad", 0, true));
  pipeline.scored(window("good", 0, true));
  await assert.rejects(pipeline.flush());
  await waitFor(() => received().includes("opened:good"), "the other stream's alert delivered");
  assert.equal(pipeline.heldAlerts, 1, "only the failing stream's alert is held");
  assert.match(pipeline.heldBecause?.reason ?? "", /bad\.json/);
  // Later events of the other stream go on being delivered while the failure lasts.
  pipeline.scored(window("good", 1, false));
  pipeline.scored(window("good", 2, false));
  await assert.rejects(pipeline.flush());
  await waitFor(() => received().includes("resolved:good"), "the other stream's resolution");
  assert.deepEqual(received(), ["opened:good", "resolved:good"]);
  assert.equal(said("could not keep incident state").length, 1, "one warning per outage");

  await rm(join(stateDir, "bad.json"), { recursive: true });
  await waitFor(() => received().includes("opened:bad"), "the held alert delivered once it saves");
  await pipeline.flush();
  assert.equal(pipeline.heldAlerts, 0);
  assert.equal(pipeline.heldBecause, undefined);
  assert.equal(said("incident state and alerts kept again").length, 1);
  assert.deepEqual(await readdir(stateDir), ["bad.json"], "the resolved stream's state deleted");
});

test("alertPipeline stop tries once more, and logs alerts it still cannot keep", async (t) => {
  const kept = await setup(t);
  await rm(kept.stateDir, { recursive: true });
  kept.pipeline.scored(window("s", 0, true));
  await assert.rejects(kept.pipeline.flush());
  await mkdir(kept.stateDir);
  await kept.pipeline.stop();
  await waitFor(() => kept.received().length === 1, "the opened alert delivered");
  assert.deepEqual(await readdir(kept.stateDir), ["s.json"]);

  const lost = await setup(t);
  await rm(lost.stateDir, { recursive: true });
  lost.pipeline.scored(window("s", 0, true));
  await lost.pipeline.stop();
  const [line] = lost.said("stopping with alerts that could not be kept");
  assert.equal(line?.level, "error");
  assert.equal(line.alerts, 1);
});

test("alertPipeline drops and counts the oldest held alerts past maxHeldAlerts", async (t) => {
  const { stateDir, pipeline, received, said } = await setup(t, { maxHeldAlerts: 2 });
  await rm(stateDir, { recursive: true });
  for (const s of ["a", "b", "c"]) {
    pipeline.scored(window(s, 0, true));
    await assert.rejects(pipeline.flush());
  }
  assert.equal(pipeline.heldAlerts, 2);
  assert.equal(pipeline.droppedAlerts, 1);
  assert.equal(said("alerts dropped")[0]?.dropped_total, 1);
  await mkdir(stateDir);
  await pipeline.flush();
  await waitFor(() => received().length === 2, "the held alerts delivered");
  assert.deepEqual(received(), ["opened:b", "opened:c"]);
  // Every stream's state was kept all the same.
  assert.deepEqual((await readdir(stateDir)).sort(), ["a.json", "b.json", "c.json"]);
});

test("alertPipeline drops held alerts past maxHeldBytes", async (t) => {
  const { stateDir, pipeline, received } = await setup(t, { maxHeldBytes: 1 });
  await rm(stateDir, { recursive: true });
  pipeline.scored(window("a", 0, true));
  await assert.rejects(pipeline.flush());
  assert.equal(pipeline.heldAlerts, 0);
  assert.equal(pipeline.droppedAlerts, 1);
  await mkdir(stateDir);
  await pipeline.flush();
  assert.deepEqual(received(), []);
  assert.deepEqual(await readdir(stateDir), ["a.json"]);
});

/** Opens an incident on sensor 1 of the 2-sensor model `m@1` and stops with it open. */
async function openOnSensor1(t: { after: (fn: () => Promise<void>) => void }) {
  const first = await setup(t);
  first.pipeline.scored(window("s", 0, true, 1));
  await first.pipeline.flush();
  await first.pipeline.stop();
  await waitFor(() => first.received().length === 1, "the opened alert delivered");
  return { stateDir: first.stateDir, opened: first.bodies()[0] };
}

test("alertPipeline restarted on a model with other sensors resolves the saved incident under its version", async (t) => {
  const { stateDir, opened } = await openOnSensor1(t);
  assert.equal(opened.anomalous_features[0].feature, "b");

  const next = await setup(t, { stateDir, features: ["c"], version: "m@2" });
  assert.equal(next.pipeline.openIncidents, 0, "not restored onto the new sensors");
  // The opened alert kept with the state is sent again too (this outbox never saw it delivered).
  await waitFor(() => next.received().includes("resolved:s"), "the resolved alert delivered");
  const resolved = next.bodies().find((b) => b.event === "resolved");
  assert.equal(resolved.incident_id, opened.incident_id);
  assert.equal(resolved.model_version, "m@1", "under the version it was saved with");
  assert.equal(resolved.num_anomalous_features, 1);
  assert.deepEqual(resolved.anomalous_features, [], "no sensor of the old model is named");
  await next.pipeline.flush();
  assert.deepEqual(await readdir(stateDir), [], "its state is deleted");
});

test("alertPipeline restores a state saved without its model while its sensors fit", async (t) => {
  const { stateDir } = await openOnSensor1(t);
  // As an engine before the model was kept with the state wrote it.
  const file = join(stateDir, "s.json");
  const { model, ...older } = JSON.parse(await readFile(file, "utf8"));
  assert.equal(model.features.length, 64, "the state names its model's sensors");
  await writeFile(file, JSON.stringify(older));

  const same = await setup(t, { stateDir, version: "m@2" });
  assert.equal(same.pipeline.openIncidents, 1, "restored: sensor 1 is one of two");
  await same.pipeline.stop();

  const fewer = await setup(t, { stateDir, features: ["c"], version: "m@3" });
  assert.equal(fewer.pipeline.openIncidents, 0, "sensor 1 is not one of one");
  await waitFor(() => fewer.received().includes("resolved:s"), "the resolved alert delivered");
  const resolved = fewer.bodies().find((b) => b.event === "resolved");
  assert.equal(resolved.model_version, "m@3", "no version was saved: the serving one");
  assert.deepEqual(resolved.anomalous_features, []);
});

test("alertPipeline says which incident each window is part of, the restored one after a restart too", async (t) => {
  const first = await setup(t);
  const opening = first.pipeline.scored(window("s", 0, true)).incidents;
  assert.ok(opening, "incident mode says it");
  const id = opening.incident[0];
  assert.ok(id, "the window that opened it is part of it");
  assert.equal(opening.openedAt[0], T0);
  assert.equal(opening.holding[0], 1);
  await waitFor(() => first.received().includes("opened:s"), "the opened alert delivered");
  assert.equal(first.bodies()[0].incident_id, id, "the alert's id");
  await first.pipeline.stop();

  // The next start restores the open incident: its windows are part of it, until it resolves.
  const next = await setup(t, { stateDir: first.stateDir });
  const going = next.pipeline.scored(window("s", 1, false)).incidents!;
  assert.deepEqual([going.incident[0], going.holding[0]], [id, 1]);
  assert.ok(Number.isNaN(going.openedAt[0]), "it opened nothing");
  const resolving = next.pipeline.scored(window("s", 2, false)).incidents!;
  assert.deepEqual([resolving.incident[0], resolving.holding[0]], [id, 0], "resolved by it");
  const after = next.pipeline.scored(window("s", 3, false)).incidents!;
  assert.deepEqual([after.incident[0], after.holding[0]], ["", 0]);

  // A machine stop ends it outside any window: the next window is part of none.
  next.pipeline.scored(window("m", 0, true));
  next.pipeline.machineStopped("m");
  assert.equal(next.pipeline.scored(window("m", 5, false)).incidents!.incident[0], "");

  const frames = await setup(t, { frameMode: true });
  assert.equal(frames.pipeline.scored(window("s", 0, true)).incidents, undefined);
});

test("alertPipeline refuses held-alert bounds that are no positive integers", () => {
  const options = {
    mode: "frame" as const,
    context: { featureNames: ["a"], threshold: 0.9, modelName: "m", modelVersion: "m@1" },
    windowSize: 2,
    severityScale: 10,
    dispatcher: {} as AlertDispatcher,
    log: createLogger({ service: "engine", level: "silent" }),
    now: Date.now,
  };
  assert.throws(
    () => new AlertPipeline({ ...options, maxHeldAlerts: 0 }),
    /'maxHeldAlerts' must be a positive integer, got 0/,
  );
  assert.throws(
    () => new AlertPipeline({ ...options, maxHeldBytes: 1.5 }),
    /'maxHeldBytes' must be a positive integer, got 1.5/,
  );
});

test("alertPipeline takes a stream as silent after staleMs or 10 of its own steps, whichever is longer", async (t) => {
  let wall = T0;
  const { pipeline, received } = await setup(t, { staleMs: 300_000, now: () => wall });
  // "slow" sends a frame every 10 minutes, "fast" every second; both open an incident.
  pipeline.scored(window("slow", 0, false));
  pipeline.scored(window("slow", 600, true));
  pipeline.scored(window("fast", 0, false));
  pipeline.scored(window("fast", 1, true));
  await pipeline.flush();
  await waitFor(() => received().length === 2, "both opened");
  // Six minutes later: "fast" is silent, "slow" is between two of its frames.
  wall += 360_000;
  pipeline.expireStale();
  await pipeline.flush();
  await waitFor(() => received().length === 3, "fast resolved");
  assert.deepEqual(received().slice(2), ["resolved:fast"]);
  pipeline.scored(window("slow", 1200, true));
  // Ten of its steps (100 minutes) without a frame: now it is silent.
  wall += 5_999_000;
  pipeline.expireStale();
  assert.equal(pipeline.openIncidents, 1, "still within 10 of its steps");
  wall += 2_000;
  pipeline.expireStale();
  await pipeline.flush();
  await waitFor(() => received().length === 4, "slow resolved");
  assert.deepEqual(received().slice(2), ["resolved:fast", "resolved:slow"]);
});

test("alertPipeline in frame mode tries its held alerts again every second, without waiting for another anomaly", async (t) => {
  const { outbox, pipeline, received, said } = await setup(t, { frameMode: true });
  // The outbox's disk is full for one append.
  const append = outbox.append.bind(outbox);
  let failures = 1;
  outbox.append = (records) =>
    failures-- > 0
      ? Promise.reject(Object.assign(new Error("no space left on device"), { code: "ENOSPC" }))
      : append(records);
  pipeline.scored(window("s", 0, true));
  await waitFor(() => said("could not keep alerts").length === 1, "the alert held");
  assert.equal(pipeline.heldAlerts, 1);
  // No other batch: the once-a-second tick keeps it.
  await waitFor(() => received().length === 1, "the held alert delivered", 5000);
  assert.equal(pipeline.heldAlerts, 0);
});

test("alertPipeline with replays keeps a resolved stream's marker until its position is committed, and a re-read opens nothing", async (t) => {
  const first = await setup(t, { replays: true });
  first.pipeline.reached(10);
  first.pipeline.scored(window("s", 0, true));
  first.pipeline.scored(window("s", 1, true));
  first.pipeline.reached(20);
  first.pipeline.scored(window("s", 2, false));
  first.pipeline.scored(window("s", 3, false));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 2, "opened and resolved delivered");
  const saved = JSON.parse(await readFile(join(first.stateDir, "s.json"), "utf8"));
  assert.deepEqual(
    saved,
    { streamId: "s", forgotten: { last: T0 + 3000, at: 20 } },
    "a marker, not a deletion",
  );
  first.pipeline.committed(19);
  await first.pipeline.flush();
  assert.deepEqual(await readdir(first.stateDir), ["s.json"], "kept until 20 is committed");

  // A new owner re-reads from a commit inside the incident (the state is ahead of it).
  const next = await setup(t, { replays: true, stateDir: first.stateDir });
  next.pipeline.committed(5);
  next.pipeline.reached(20);
  for (let second = 1; second <= 3; second++) next.pipeline.scored(window("s", second, second < 2));
  await next.pipeline.flush();
  assert.deepEqual(next.received(), [], "no second incident from the re-read windows");
  next.pipeline.scored(window("s", 4, true));
  await waitFor(() => next.received().length === 1, "a later window opens a new incident");
  assert.deepEqual(next.received(), ["opened:s"]);
  assert.equal(next.bodies()[0].incident_started_at, new Date(T0 + 4000).toISOString());
  await next.pipeline.flush();
  assert.ok(JSON.parse(await readFile(join(first.stateDir, "s.json"), "utf8")).snapshot);
  next.pipeline.scored(window("s", 5, false));
  next.pipeline.reached(30);
  next.pipeline.scored(window("s", 6, false));
  next.pipeline.committed(30);
  await next.pipeline.flush();
  assert.deepEqual(await readdir(first.stateDir), [], "deleted once committed past");
});

test("alertPipeline resolves a restored incident whose stream comes back behind its last window, and takes that window afresh", async (t) => {
  const first = await setup(t, { staleMs: 300_000 });
  first.pipeline.scored(window("s", 100, true));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 1, "the opened alert delivered");
  const [old] = first.bodies();
  await first.pipeline.stop();

  // The producer's clock was set back an hour and a half across the restart.
  const next = await setup(t, { stateDir: first.stateDir, staleMs: 300_000 });
  next.pipeline.scored(window("s", -5400, false));
  assert.equal(next.pipeline.openIncidents, 0, "the restored incident is resolved");
  next.pipeline.scored(window("s", -5399, true));
  assert.equal(next.pipeline.openIncidents, 1, "the next upset opens an incident");
  next.pipeline.scored(window("s", -5398, false));
  next.pipeline.scored(window("s", -5397, false));
  await next.pipeline.flush();
  // The opened alert kept with the state is sent again too (this outbox never saw it delivered).
  await waitFor(() => next.distinct().length === 4, "resolved, opened and resolved delivered");
  const [, resolved, opened, closed] = next.distinct();
  assert.deepEqual(
    [resolved.event, resolved.incident_id, resolved.frame_timestamp],
    ["resolved", old.incident_id, new Date(T0 + 100_000).toISOString()],
    "stale, at its last window",
  );
  assert.equal(opened.event, "opened");
  assert.notEqual(opened.incident_id, old.incident_id);
  assert.equal(opened.incident_started_at, new Date(T0 - 5_399_000).toISOString());
  assert.deepEqual([closed.event, closed.incident_id], ["resolved", opened.incident_id]);
  assert.deepEqual(
    next.said("restored incident resolved").map((l) => l.stream_id),
    ["s"],
    "said why",
  );
});

test("alertPipeline takes a restored stream's windows inside its saved span as re-reads: the incident goes on, nothing is counted twice, and they are its windows", async (t) => {
  const first = await setup(t, { staleMs: 300_000 });
  first.pipeline.scored(window("s", 0, false));
  for (let second = 1; second <= 5; second++) first.pipeline.scored(window("s", second, true));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 1, "the opened alert delivered");
  const [old] = first.bodies();
  await first.pipeline.stop();

  // After the restart the producer replays seconds 1..5, the incident's; had the replay been
  // taken, sensor 1 (flagged in it only) would have joined the incident.
  const next = await setup(t, { stateDir: first.stateDir, staleMs: 300_000 });
  const tags: string[] = [];
  for (let second = 1; second <= 5; second++) {
    const { incidents } = next.pipeline.scored(window("s", second, true, [0, 1]));
    tags.push(incidents!.incident[0]);
  }
  assert.equal(next.pipeline.openIncidents, 1, "the restored incident goes on");
  assert.deepEqual(tags, Array(5).fill(old.incident_id), "its re-read windows are its own");
  next.pipeline.scored(window("s", 6, true));
  next.pipeline.scored(window("s", 7, false));
  next.pipeline.scored(window("s", 8, false));
  await next.pipeline.flush();
  await waitFor(
    () => next.distinct().some((b) => b.event === "resolved"),
    "the resolved alert delivered",
  );
  const [opened, resolved, ...more] = next.distinct();
  assert.deepEqual(more, []);
  assert.deepEqual([opened.event, opened.alert_id], ["opened", old.alert_id], "the kept one");
  assert.deepEqual(
    [resolved.event, resolved.incident_id, resolved.frame_timestamp],
    ["resolved", old.incident_id, new Date(T0 + 8000).toISOString()],
    "resolved by the quiet windows after the upset, not at the restart",
  );
  assert.equal(resolved.num_anomalous_features, 1, "the replay added no sensor");
  assert.deepEqual(next.said("restored incident resolved"), []);
  assert.equal(next.said("restored stream re-read").length, 1, "said once");
});

test("alertPipeline still resolves a restored incident when, after re-reads, its stream comes back older than the incident's start (a clock set back past its span)", async (t) => {
  const first = await setup(t, { staleMs: 300_000 });
  for (let second = 10; second <= 12; second++) first.pipeline.scored(window("s", second, true));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 1, "the opened alert delivered");
  const [old] = first.bodies();
  await first.pipeline.stop();

  const next = await setup(t, { stateDir: first.stateDir, staleMs: 300_000 });
  next.pipeline.scored(window("s", 11, true));
  assert.equal(next.pipeline.openIncidents, 1, "a re-read inside its span changes nothing");
  next.pipeline.scored(window("s", 5, true));
  await next.pipeline.flush();
  await waitFor(() => next.distinct().length === 3, "kept opened, resolved and a new opened");
  const [, resolved, opened] = next.distinct();
  assert.deepEqual(
    [resolved.event, resolved.incident_id, resolved.frame_timestamp],
    ["resolved", old.incident_id, new Date(T0 + 12_000).toISOString()],
    "stale, at its last window",
  );
  assert.deepEqual(
    [opened.event, opened.incident_started_at],
    ["opened", new Date(T0 + 5000).toISOString()],
    "the window older than the span taken afresh",
  );
  assert.notEqual(opened.incident_id, old.incident_id);
  assert.equal(next.said("restored incident resolved").length, 1, "said why");
});

test("alertPipeline takes quiet windows older than a restored incident's start as re-reads (a replay reaching back before a young incident)", async (t) => {
  const first = await setup(t, { staleMs: 300_000 });
  for (let second = 5; second <= 9; second++) first.pipeline.scored(window("s", second, false));
  for (let second = 10; second <= 12; second++) first.pipeline.scored(window("s", second, true));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 1, "the opened alert delivered");
  const [old] = first.bodies();
  await first.pipeline.stop();

  const next = await setup(t, { stateDir: first.stateDir, staleMs: 300_000 });
  // The producer replays from second 5: quiet windows before the incident, then its own.
  for (let second = 5; second <= 9; second++) next.pipeline.scored(window("s", second, false));
  for (let second = 10; second <= 12; second++) next.pipeline.scored(window("s", second, true));
  assert.equal(next.pipeline.openIncidents, 1, "the replay changed nothing");
  next.pipeline.scored(window("s", 13, true));
  for (let second = 14; second <= 40; second++) next.pipeline.scored(window("s", second, false));
  await next.pipeline.flush();
  await waitFor(() => next.distinct().length === 2, "kept opened, then resolved once");
  const [opened, resolved] = next.distinct();
  assert.deepEqual(
    [opened.event, opened.incident_id, resolved.event, resolved.incident_id],
    ["opened", old.incident_id, "resolved", old.incident_id],
  );
  assert.ok(Date.parse(resolved.frame_timestamp) > T0 + 13_000, "resolved after the upset");
  assert.equal(next.said("restored incident resolved").length, 0);
});

test("alertPipeline resolves a restored incident whose stream comes back after a silence past the gap rule, and keeps a slow stream's", async (t) => {
  const first = await setup(t, { staleMs: 300_000 });
  // "slow" sends a frame every 10 minutes, "fast" every second; both open an incident.
  first.pipeline.scored(window("slow", 0, false));
  first.pipeline.scored(window("slow", 600, true));
  first.pipeline.scored(window("fast", 0, false));
  first.pipeline.scored(window("fast", 1, true));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 2, "both opened");
  const opened = new Map(first.bodies().map((b) => [b.stream_id, b.incident_id]));
  await first.pipeline.stop();
  const saved = JSON.parse(await readFile(join(first.stateDir, "slow.json"), "utf8"));
  assert.equal(saved.step, 600_000, "the stream's step is kept with its state");

  const next = await setup(t, { stateDir: first.stateDir, staleMs: 300_000 });
  await waitFor(() => next.distinct().length === 2, "the kept opened alerts sent again");
  // Both come back 50 minutes later: past INCIDENT_STALE_MS, but within 10 of slow's steps.
  next.pipeline.scored(window("fast", 3001, true));
  next.pipeline.scored(window("slow", 3600, true));
  await next.pipeline.flush();
  await waitFor(() => next.distinct().length === 4, "fast's incident resolved, a new one opened");
  const [resolved, reopened] = next.distinct().slice(2);
  assert.deepEqual(
    [resolved.event, resolved.incident_id, resolved.frame_timestamp],
    ["resolved", opened.get("fast"), new Date(T0 + 1000).toISOString()],
  );
  assert.deepEqual([reopened.event, reopened.stream_id], ["opened", "fast"]);
  assert.equal(reopened.incident_started_at, new Date(T0 + 3_001_000).toISOString());
  assert.equal(next.pipeline.openIncidents, 2, "slow's incident goes on, fast's new one is open");
  next.pipeline.scored(window("slow", 4200, false));
  next.pipeline.scored(window("slow", 4800, false));
  await next.pipeline.flush();
  await waitFor(() => next.distinct().length === 5, "slow's incident resolved by quiet windows");
  const last = next.distinct()[4];
  assert.deepEqual([last.event, last.incident_id], ["resolved", opened.get("slow")]);
});

test("alertPipeline with replays ignores re-read windows at a takeover, and resolves the restored incident when its stream returns after a silence past the gap rule", async (t) => {
  const first = await setup(t, { replays: true, staleMs: 300_000 });
  first.pipeline.reached(10);
  for (let second = 0; second <= 3; second++) first.pipeline.scored(window("s", second, true));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 1, "opened delivered");
  const [old] = first.bodies();
  await first.pipeline.stop();

  // Every process was down for two hours (a power cut); the new owner re-reads from its commit.
  const next = await setup(t, { replays: true, staleMs: 300_000, stateDir: first.stateDir });
  next.pipeline.committed(5);
  next.pipeline.reached(10);
  for (let second = 1; second <= 3; second++) next.pipeline.scored(window("s", second, false));
  assert.equal(next.pipeline.openIncidents, 1, "re-read windows change nothing");
  next.pipeline.reached(20);
  next.pipeline.scored(window("s", 7203, true));
  await next.pipeline.flush();
  await waitFor(() => next.distinct().length === 3, "kept opened, resolved and a new opened");
  const [, resolved, opened] = next.distinct();
  assert.deepEqual(
    [resolved.event, resolved.incident_id, resolved.frame_timestamp],
    ["resolved", old.incident_id, new Date(T0 + 3000).toISOString()],
    "stale, at its last window",
  );
  assert.deepEqual(
    next.said("restored incident resolved").map((l) => l.stream_id),
    ["s"],
    "said why",
  );
  // The window after the silence is taken afresh: an upset of its own, with a new id.
  assert.deepEqual([opened.event, opened.stream_id], ["opened", "s"]);
  assert.notEqual(opened.incident_id, old.incident_id);
  assert.equal(opened.incident_started_at, new Date(T0 + 7_203_000).toISOString());
});

test("alertPipeline with replays goes on with the restored incident when its stream continues at a takeover", async (t) => {
  const first = await setup(t, { replays: true, staleMs: 300_000 });
  first.pipeline.reached(10);
  for (let second = 0; second <= 3; second++) first.pipeline.scored(window("s", second, true));
  await first.pipeline.flush();
  await waitFor(() => first.received().length === 1, "opened delivered");
  await first.pipeline.stop();

  const next = await setup(t, { replays: true, staleMs: 300_000, stateDir: first.stateDir });
  next.pipeline.committed(5);
  next.pipeline.reached(10);
  for (let second = 2; second <= 6; second++) next.pipeline.scored(window("s", second, true));
  await next.pipeline.flush();
  assert.equal(next.pipeline.openIncidents, 1);
  assert.deepEqual(next.said("restored incident resolved"), []);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(
    next.distinct().map((b) => b.event),
    ["opened"],
    "only the kept opened alert, sent again",
  );
});

test("alertPipeline does not take a window the tracker ignores as a sign the stream is alive", async (t) => {
  let wall = T0;
  const now = () => wall;
  const first = await setup(t, { replays: true, staleMs: 300_000, now });
  first.pipeline.reached(10);
  first.pipeline.scored(window("s", 0, true));
  first.pipeline.scored(window("s", 1, true));
  await first.pipeline.flush();
  await first.pipeline.stop();

  // A new owner re-reads a window it had scored (not newer than the restored last): ignored.
  const next = await setup(t, { replays: true, stateDir: first.stateDir, staleMs: 300_000, now });
  wall += 200_000;
  next.pipeline.scored(window("s", 0, true));
  wall += 200_000;
  next.pipeline.expireStale();
  assert.equal(next.pipeline.openIncidents, 0, "silent for 400 s since its last window taken");
  await next.pipeline.flush();
  await waitFor(() => next.received().includes("resolved:s"), "the resolved alert delivered");
});

test("alertPipeline warns, at most once a minute and with counts since, when ALERT_MAX_BYTES cuts an alert", async (t) => {
  let wall = T0;
  const { pipeline, said, bodies, received } = await setup(t, { maxBytes: 100, now: () => wall });
  pipeline.scored(window("a", 0, true, [0, 1]));
  wall += 1000;
  pipeline.scored(window("b", 0, true, [0, 1]));
  wall += 60_000;
  pipeline.scored(window("c", 0, true, [0, 1]));
  await pipeline.flush();
  await waitFor(() => received().length === 3, "the three opened alerts delivered");
  assert.equal(pipeline.cutAlerts, 3);
  const lines = said("alerts cut to fit ALERT_MAX_BYTES");
  assert.deepEqual(
    lines.map((l) => l.level),
    ["warn", "warn"],
  );
  const [a, , c] = bodies();
  assert.equal(a.anomalous_features.length, 1, "one sensor left the list");
  assert.equal(a.num_anomalous_features, 2, "and is still counted");
  assert.deepEqual(
    lines.map(({ alert_id, context_dropped, typical_dropped, unlisted, since_last_line }) => ({
      alert_id,
      context_dropped,
      typical_dropped,
      unlisted,
      since_last_line,
    })),
    [
      {
        alert_id: a.alert_id,
        context_dropped: 0,
        typical_dropped: 0,
        unlisted: 1,
        since_last_line: { alerts: 1, context_dropped: 0, typical_dropped: 0, unlisted: 1 },
      },
      {
        alert_id: c.alert_id,
        context_dropped: 0,
        typical_dropped: 0,
        unlisted: 1,
        since_last_line: { alerts: 2, context_dropped: 0, typical_dropped: 0, unlisted: 2 },
      },
    ],
  );
});

/** `windows` of one batch, in order (each `window(...)` a row). */
function batchOf(...rows: ScoredBatch[]): ScoredBatch {
  const flagged = rows.flatMap((r) => [...r.flagged]);
  const from = [0];
  for (const r of rows) from.push(from.at(-1)! + r.flagged.length);
  return {
    ...rows[0],
    size: rows.length,
    scores: Float32Array.from(rows.flatMap((r) => [...r.scores])),
    flagged: Int32Array.from(flagged),
    flaggedFrom: Uint32Array.from(from),
    evidenceFrom: Uint32Array.from(from),
    windows: new Float32Array(2 * flagged.length),
    levels: Float32Array.from(flagged, () => Number.NaN),
    streamIds: rows.map((r) => r.streamIds[0]),
    timestamps: Float64Array.from(rows.map((r) => r.timestamps[0])),
    receivedAt: Float64Array.from(rows.map((r) => r.receivedAt[0])),
    spans: rows.map(() => undefined),
  };
}

/**
 * Incident context whose kind is `process` once sensor 1 is listed, else `sensor`; a `resolved`
 * repeats the kind it carries, as `IncidentEvidence.build` does.
 */
const kindBySensor = {
  nFeatures: 2,
  build: (e: { event: string; kind?: string; sensors: { feature_idx: number }[] }) => ({
    kind:
      e.event === "resolved"
        ? e.kind
        : e.sensors.some((s) => s.feature_idx === 1)
          ? "process"
          : "sensor",
    sensors: new Map(),
  }),
} as unknown as IncidentEvidence;

test("alertPipeline gives a resolved the kind its updated judged in the same batch", async (t) => {
  const { pipeline, bodies } = await setup(t, { evidence: kindBySensor });
  pipeline.scored(window("a", 0, true, 0));
  // An hour on (past INCIDENT_UPDATE_MIN_MS): sensor 1 joins, then two quiet windows resolve.
  pipeline.scored(
    batchOf(window("a", 4000, true, [0, 1]), window("a", 4001, false), window("a", 4002, false)),
  );
  await pipeline.flush();
  await waitFor(() => bodies().length === 3, "opened, updated and resolved delivered");
  assert.deepEqual(
    bodies().map((b) => `${b.event}:${b.kind}`),
    ["opened:sensor", "updated:process", "resolved:process"],
  );
});

test("alertPipeline gives a resolved the kind its opened judged in the same batch", async (t) => {
  const { pipeline, bodies } = await setup(t, { evidence: kindBySensor });
  pipeline.scored(batchOf(window("a", 0, true, 0), window("a", 1, false), window("a", 2, false)));
  await pipeline.flush();
  await waitFor(() => bodies().length === 2, "opened and resolved delivered");
  assert.deepEqual(
    bodies().map((b) => `${b.event}:${b.kind}`),
    ["opened:sensor", "resolved:sensor"],
  );
});

test("alertPipeline warns, at most once a minute and with counts since, when streams go without incident history", async (t) => {
  let wall = T0;
  // 3 frames x (2 sensors x 4 + 8) bytes = 48 bytes a stream: 60 bytes hold one.
  const history = new HistoryStore({ frames: 3, features: 2, maxBytes: 60, sharedFrames: 0 });
  const evidence = new IncidentEvidence({
    store: history,
    featureNames: ["a", "b"],
    windowSize: 2,
    maxBytes: 1 << 20,
  });
  const { pipeline, said } = await setup(t, { evidence, now: () => wall });
  const warned = () => said("streams go without incident history");
  // The batcher keeps each frame before its window is scored.
  history.record("a", T0, Float32Array.of(1, 1));
  pipeline.scored(window("a", 0, false));
  assert.equal(warned().length, 0, "every stream has its ring");
  history.record("b", T0, Float32Array.of(1, 1));
  pipeline.scored(window("b", 0, false));
  history.record("b", T0 + 1000, Float32Array.of(1, 1));
  wall += 59_000;
  pipeline.scored(window("b", 1, false));
  wall += 1000;
  pipeline.scored(window("b", 2, false));
  assert.deepEqual(
    warned().map((l) => [
      l.level,
      l.ringless_frames_since_last_line,
      l.ringless_frames,
      l.capacity,
    ]),
    [
      ["warn", 1, 1, 1],
      ["warn", 1, 2, 1],
    ],
  );
});
