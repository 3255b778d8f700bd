import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { IncidentTracker } from "../../scoring/incident_tracker.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { startAlertSink } from "../_test/alert_sink.ts";
import { waitFor } from "../_test/wait_for.ts";
import type { ScoredBatch } from "../batch/window_scorer.ts";
import { AlertDispatcher } from "./alert_dispatcher.ts";
import { AlertPipeline } from "./alert_pipeline.ts";
import { createAlertSender } from "./alert_sender.ts";
import { FileIncidentStateStore } from "./incident_state_store.ts";
import { Outbox } from "./outbox.ts";

const T0 = Date.UTC(2026, 10, 24, 9);

/** One scored window of a 2-sensor model: sensor 0 flagged, or nothing. */
function window(streamId: string, second: number, flagged: boolean): ScoredBatch {
  const f = flagged ? [0] : [];
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
 */
async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  options: { maxHeldAlerts?: number; maxHeldBytes?: number } = {},
) {
  const dir = await mkdtemp(join(tmpdir(), "alert-pipeline-"));
  const stateDir = join(dir, "incidents");
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
  const pipeline = new AlertPipeline({
    mode: "incident",
    context: { featureNames: ["a", "b"], threshold: 0.9, modelName: "m", modelVersion: "m@1" },
    windowSize: 2,
    severityScale: 10,
    dispatcher,
    log,
    now: () => Date.now(),
    tracker: new IncidentTracker({
      nFeatures: 2,
      modelVersion: "m@1",
      confirmK: 1,
      confirmN: 1,
      quietWindows: 2,
      updateMinMs: 3_600_000,
      updateSeverityRise: 100,
      maxFeatures: 2,
    }),
    store: new FileIncidentStateStore(stateDir),
    ...options,
  });
  await pipeline.start();
  dispatcher.start();
  t.after(async () => {
    await pipeline.stop();
    dispatcher.close();
    await outbox.close().catch(() => {});
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  });
  /** `event:stream` of each alert the sink received, in order. */
  const received = () =>
    sink.requests.map((r) => JSON.parse(r.body)).map((b) => `${b.event}:${b.stream_id}`);
  const said = (msg: string) => lines.filter((l) => l.msg.startsWith(msg));
  return { stateDir, sink, pipeline, lines, received, said };
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
