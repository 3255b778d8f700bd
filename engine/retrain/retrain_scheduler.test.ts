// Scheduled retraining in a real engine process: too little history held, a promoted candidate served by the same process, a failing run shown while scoring goes on; a round skipped here.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { modelsResponseSchema, type ServedModel } from "../../contracts/models_api.ts";
import { NAME, plantFrames, T0, trainInto } from "../../models/retrain/_test/plant_history.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { postFrameUntilTaken, spawnEngine, waitReady } from "../_test/engine_process.ts";
import { trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { readHistory } from "../history/mod.ts";
import { RetrainBusy, type RetrainResult, RetrainScheduler, type RetrainSkipped } from "./mod.ts";

/** `GET /models`, checked against the contract. */
async function served(port: number): Promise<ServedModel[]> {
  const res = await fetch(`http://127.0.0.1:${port}/models`);
  assert.equal(res.status, 200);
  return v.parse(modelsResponseSchema, await res.json()).models;
}

/** Posts frames one by one, waiting out back-pressure (429). */
async function feed(port: number, frames: { data: Record<string, number>; timestamp: number }[]) {
  for (const [i, f] of frames.entries()) {
    const body = JSON.stringify({ ...f, stream_id: "line-1" });
    await postFrameUntilTaken(port, body, `frame ${i}`);
  }
}

const plantFrame = (frame: Float32Array, t: number) => ({
  data: Object.fromEntries(Array.from(frame, (x, f) => [`feature_${f}`, x])),
  timestamp: T0 + t * 1000,
});

test("scheduled retraining holds a young history, then promotes a candidate the same engine serves", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "retrain-schedule-"));
  const registry = join(root, "models");
  const history = join(root, "history");
  const { meta: first } = await trainInto(registry, plantFrames(1200, 1), true);
  const engine = spawnEngine("node", {
    MODEL_DIR: registry,
    DEFAULT_MODEL_NAME: NAME,
    HISTORY_DIR: history,
    // Every frame kept (the default keeps one run of 300 in 24).
    HISTORY_EVERY_N: "1",
    DATA_DIR: join(root, "data"),
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: "http://127.0.0.1:9",
    INCIDENT_CONFIRM_K: "2",
    INCIDENT_CONFIRM_N: "3",
    INCIDENT_QUIET_WINDOWS: "3",
    // A round every 3.6 s after the previous one ended.
    RETRAIN_EVERY_H: "0.001",
    RETRAIN_PROMOTE: "auto",
  });
  try {
    const port = await engine.port();
    await waitReady(port);
    const frames = plantFrames(2000, 2).map(plantFrame);
    await feed(port, frames.slice(0, 100));

    // A young history is an expected outcome: held, no version written, not an error.
    const young = await waitFor(
      async () => {
        const last = (await served(port))[0].retrain?.last;
        return last?.outcome === "decided" ? last : undefined;
      },
      "a scheduled run to decide on the young history",
      120_000,
      100,
    );
    assert.equal(young.decision, "held");
    assert.match(young.reasons.join(), /too little history/);
    assert.equal(young.candidate_version, undefined);
    assert.ok(young.finished_at && young.finished_at >= young.started_at);
    assert.deepEqual((await served(port))[0].versions, [first.version]);

    await feed(port, frames.slice(100));
    await waitFor(
      async () => (await readHistory(join(history, NAME), { model: NAME })).frames.length >= 1992,
      "the history to hold the stream",
      60_000,
      100,
    );
    // A later round trains on it, the gate promotes, the engine follows the registry's pointer.
    const model = await waitFor(
      async () => {
        const m = (await served(port))[0];
        const p = m.retrain?.last_promoted;
        return p?.activated && m.active_version === p.candidate_version ? m : undefined;
      },
      "a scheduled run to promote a candidate that the engine then serves",
      300_000,
      200,
    );
    const promoted = model.retrain?.last_promoted;
    assert.ok(promoted);
    assert.notEqual(promoted.candidate_version, first.version);
    assert.equal(promoted.outcome, "decided");
    assert.equal(promoted.decision, "promoted");
    assert.ok(model.versions.includes(first.version) && model.versions.length >= 2);
    assert.equal(model.retrain?.every_h, 0.001);
    // The served version switches before the previous session is closed and the switch logged.
    await waitFor(
      async () =>
        engine
          .logs()
          .some((l) => l.msg === "model activated" && l.version === promoted.candidate_version),
      "the activation to be logged",
      10_000,
      50,
    );
    assert.ok(
      engine.logs().some((l) => l.msg === "scheduled retraining decided" && l.decision === "held"),
    );
    assert.equal(engine.child.exitCode, null, "the engine never restarted");
    const runs = engine.logs().filter((l) => l.msg === "scheduled retraining decided");
    t.diagnostic(`runs: ${runs.map((l) => `${l.decision} in ${l.duration_ms} ms`).join(", ")}`);
  } finally {
    // Graceful: the shutdown stops a run in progress with its child.
    await engine.kill("SIGTERM");
    await rm(root, { recursive: true, force: true });
  }
});

test("a failing scheduled run is shown with its error and scoring goes on", async () => {
  // The fixture's model is in the flat layout: retraining cannot write versions beside it.
  const fixture = await trainFixtureModel({ features: 6, name: "flatpump" });
  const engine = spawnEngine("node", {
    MODEL_DIR: fixture.dir,
    DEFAULT_MODEL_NAME: fixture.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: "http://127.0.0.1:9",
    RETRAIN_EVERY_H: "0.0005",
  });
  const frame = (t: number) => ({
    data: Object.fromEntries(fixture.featureNames.map((n, f) => [n, fixture.normalFrame(t)[f]])),
    timestamp: T0 + t * 1000,
  });
  const scored = async (port: number) =>
    (
      (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as {
        frames: { scored: number };
      }
    ).frames.scored;
  try {
    const port = await engine.port();
    await waitReady(port);
    const failed = await waitFor(
      async () => {
        const last = (await served(port))[0].retrain?.last;
        return last?.outcome === "failed" ? last : undefined;
      },
      "a scheduled run to fail",
      120_000,
      100,
    );
    assert.match(failed.error ?? "", /flat layout/);
    assert.equal(failed.decision, undefined);
    assert.ok(failed.finished_at);
    assert.ok(
      engine
        .logs()
        .some(
          (l) =>
            l.msg === "scheduled retraining failed; scoring goes on with the active version" &&
            l.level === "error" &&
            /flat layout/.test(l.error),
        ),
    );

    // Scoring goes on, and so does the schedule.
    const before = await scored(port);
    await feed(
      port,
      Array.from({ length: 20 }, (_, t) => frame(t)),
    );
    await waitFor(async () => (await scored(port)) >= before + 16, "the frames to be scored");
    assert.equal((await fetch(`http://127.0.0.1:${port}/health/ready`)).status, 200);
    await waitFor(
      async () => {
        const last = (await served(port))[0].retrain?.last;
        return last?.outcome === "failed" && last.started_at > failed.started_at;
      },
      "the next round to run",
      120_000,
      100,
    );
    assert.equal(engine.child.exitCode, null);
  } finally {
    await engine.kill("SIGTERM");
    await fixture.remove();
  }
});

test("a round skipped here (another worker retrains) records no run and the schedule goes on", async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    service: "engine",
    write: (l) => void lines.push(JSON.parse(l)),
  });
  const answers: (RetrainResult | RetrainSkipped)[] = [
    { outcome: "decided", decision: "held", reasons: ["nothing better"] },
    { skipped: "worker b holds the retraining lease of pump" },
    { outcome: "decided", decision: "promoted", candidate_version: "2", reasons: [] },
  ];
  let calls = 0;
  let third = () => {};
  const thirdMayEnd = new Promise<void>((resolve) => {
    third = resolve;
  });
  const scheduler = new RetrainScheduler({
    // Rounds 36 ms apart.
    everyH: 0.00001,
    models: () => ["pump"],
    async run() {
      calls++;
      if (calls === 3) await thirdMayEnd;
      return answers[Math.min(calls, answers.length) - 1];
    },
    log,
  });
  scheduler.start();
  try {
    await waitFor(() => calls === 3, "the third round to start");
    // The skipped round left no run behind: one decided, one skipped, the third running.
    const said = (msg: string) => lines.filter((l) => l.msg === msg);
    assert.equal(said("scheduled retraining decided").length, 1);
    assert.deepEqual(
      said("scheduled retraining skipped").map((l) => l.reason),
      ["worker b holds the retraining lease of pump"],
    );
    assert.equal(scheduler.status("pump").last?.outcome, "running");
    third();
    const promoted = await waitFor(
      () => scheduler.status("pump").last_promoted,
      "the third round to promote",
    );
    assert.equal(promoted.candidate_version, "2");
    assert.equal(scheduler.status("pump").last?.decision, "promoted");
  } finally {
    third();
    await scheduler.stop();
  }
});

test("RETRAIN_EVERY_H is off by default, takes fractions of an hour and refuses a bad value by name", () => {
  assert.equal(parseConfig(engineConfigSchema, {}).RETRAIN_EVERY_H, 0);
  assert.equal(parseConfig(engineConfigSchema, { RETRAIN_EVERY_H: "0.25" }).RETRAIN_EVERY_H, 0.25);
  for (const bad of ["-1", "daily", "9000"]) {
    assert.throws(
      () => parseConfig(engineConfigSchema, { RETRAIN_EVERY_H: bad }),
      /'RETRAIN_EVERY_H' must be a number 0..8760/,
    );
  }
});

test("a run asked for while a round waits goes first, the round waits for it, and a second ask is refused: never two at once", async () => {
  const log = createLogger({ service: "engine", level: "silent", write: () => {} });
  let running = 0;
  let most = 0;
  const calls: string[] = [];
  const ends: (() => void)[] = [];
  const scheduler = new RetrainScheduler({
    // Rounds 36 ms after the previous one ended: due while the asked run lasts.
    everyH: 0.00001,
    models: () => ["pump", "mixer"],
    async run(model, _signal, asked) {
      calls.push(`${model}:${asked ? asked.by : "round"}`);
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => ends.push(resolve));
      running--;
      return { outcome: "decided", decision: "held", reasons: ["nothing better"] };
    },
    log,
  });
  const asked = { by: "ana", reason: "operating point moved", at: new Date().toISOString() };
  scheduler.start();
  try {
    const run = scheduler.ask("mixer", asked);
    assert.equal(run.outcome, "running");
    assert.deepEqual(run.requested, asked);
    assert.deepEqual(scheduler.status("mixer").last, run);
    assert.throws(() => scheduler.ask("pump", { ...asked, by: "bo" }), RetrainBusy);
    // The round comes due meanwhile and waits: still one run, the asked one.
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(calls, ["mixer:ana"]);
    ends.shift()?.();
    await waitFor(() => calls.length === 2, "the round to start once the asked run ended");
    assert.deepEqual(calls, ["mixer:ana", "pump:round"]);
    assert.equal(scheduler.status("mixer").last?.decision, "held");
    assert.deepEqual(scheduler.status("mixer").last?.requested, asked);
    assert.throws(() => scheduler.ask("mixer", asked), /pump is running/);
    ends.shift()?.();
    await waitFor(() => calls.length === 3, "the round's second model");
    assert.equal(calls[2], "mixer:round");
    assert.equal(scheduler.status("mixer").last?.requested, undefined, "a round's run");
    assert.equal(most, 1, "never two runs at once");
  } finally {
    const stopping = scheduler.stop();
    // The runs here ignore the stop signal: end whichever is in progress.
    await waitFor(() => {
      for (const end of ends.splice(0)) end();
      return running === 0;
    }, "the runs to end");
    await stopping;
  }
});

test("without a schedule (RETRAIN_EVERY_H=0) runs happen only when asked for, and status says so", async () => {
  const log = createLogger({ service: "engine", level: "silent", write: () => {} });
  let calls = 0;
  const scheduler = new RetrainScheduler({
    everyH: 0,
    models: () => ["pump"],
    async run() {
      calls++;
      return { outcome: "decided", decision: "promoted", candidate_version: "2", reasons: [] };
    },
    log,
  });
  scheduler.start();
  try {
    assert.deepEqual(scheduler.status("pump"), { every_h: 0, next_at: null });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(calls, 0, "no round");
    scheduler.ask("pump", { by: "ana", reason: "", at: new Date().toISOString() });
    const promoted = await waitFor(() => scheduler.status("pump").last_promoted, "the run");
    assert.equal(promoted.candidate_version, "2");
    assert.equal(scheduler.status("pump").next_at, null);
    assert.throws(
      () =>
        new RetrainScheduler({
          everyH: -1,
          models: () => [],
          run: async () => ({ skipped: "" }),
          log,
        }),
      /'RETRAIN_EVERY_H' must be 0 or above, got -1/,
    );
  } finally {
    await scheduler.stop();
  }
  assert.throws(
    () => scheduler.ask("pump", { by: "ana", reason: "", at: new Date().toISOString() }),
    /shuts down/,
  );
});
