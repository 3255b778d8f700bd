// A false positive marked once stops coming back after the next retraining: real engine, real backend, the verdict over HTTP, `npm run retrain`, the hot swap.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ownDatabase } from "../../backend/_test/own_database.ts";
import { NODE_TS, spawnService } from "../../backend/_test/spawn_service.ts";
import { postFrameUntilTaken, spawnEngine, waitReady } from "../../engine/_test/engine_process.ts";
import { waitFor } from "../../engine/_test/wait_for.ts";
import { readHistory, readIndex } from "../../engine/history/mod.ts";
import { NAME, plantFrames, trainInto } from "./_test/plant_history.ts";
import { runRetrainCli } from "./_test/retrain_cli.ts";

/**
 * The benign pattern: the plant's cleaning cycle lifts feature_3 and feature_6 together, 15 of
 * their standard deviations, for 60 frames. The active version never saw it and alarms.
 */
const PATTERN = { sensors: [3, 6], magnitude: 15, frames: 60 };
/**
 * Frames streamed before the retraining, the pattern from frame 900: the retraining judges on the
 * most recent 300 and trains on the rest, which it calibrates on from about frame 480 on, so the
 * pattern lies where an accepted behaviour widens what the candidate calls normal.
 */
const BEFORE = { frames: 1500, patternAt: 900 };
/** After the swap: the pattern again, then a real fault, a 3-frame spike of 12 std on feature_1. */
const AFTER = { frames: 700, patternAt: 200, spikeAt: 500, spikeSensor: 1 };
const SECOND = 1000;

interface Incident {
  incident_id: string;
  state: string;
  started_at: string;
  opened_model_version: string | null;
  sensors: { feature_idx: number }[];
}

/** Posts `frames` to the engine one by one (waiting out 429s), frame t at `t0 + t` seconds. */
async function stream(port: number, frames: Float32Array[], t0: number): Promise<void> {
  for (let t = 0; t < frames.length; t++) {
    const data = Object.fromEntries(Array.from(frames[t], (x, f) => [`feature_${f}`, x]));
    const body = JSON.stringify({ data, timestamp: t0 + t * SECOND, stream_id: "line-1" });
    await postFrameUntilTaken(port, body, `frame ${t}`);
  }
}

/** `n` frames of plant day `dayNo`, the pattern from frame `patternAt`, `edit` for anything else. */
function day(
  n: number,
  dayNo: number,
  patternAt: number,
  edit?: (t: number, f: Float32Array, std: Float64Array) => void,
) {
  return plantFrames(n, dayNo, (t, f, std) => {
    if (t >= patternAt && t < patternAt + PATTERN.frames) {
      for (const s of PATTERN.sensors) f[s] += PATTERN.magnitude * std[s];
    }
    edit?.(t, f, std);
  });
}

test("an incident marked false positive once is learnt by the next retraining: its pattern raises no incident after the swap, a real fault still does", async () => {
  const root = await mkdtemp(join(tmpdir(), "fp-loop-"));
  const registry = join(root, "models");
  const history = join(root, "history");
  const database = await ownDatabase("fp_loop");
  const backend = spawnService([...NODE_TS, "backend/main.ts"], {
    ...database.env,
    HOST: "127.0.0.1",
    PORT: "0",
    SIMULATOR_RATE_HZ: "0",
    LOG_LEVEL: "info",
  });
  let engine: ReturnType<typeof spawnEngine> | undefined;
  try {
    const { meta: active } = await trainInto(registry, plantFrames(1200, 1), true);
    const listening = await backend.waitForLog((l) => l.msg === "backend listening", 90_000);
    const api = `http://127.0.0.1:${listening.port}/api/v1`;
    const env = {
      MODEL_DIR: registry,
      DEFAULT_MODEL_NAME: NAME,
      HISTORY_DIR: history,
      // Every frame kept (the default keeps one run of 300 in 24).
      HISTORY_EVERY_N: "1",
      DATA_DIR: join(root, "data"),
      DEFAULT_DEVICE: "cpu",
      NESTJS_URL: `http://127.0.0.1:${listening.port}`,
      // Verdicts pulled every second; alerts delivered one at a time, in order.
      DECISIONS_POLL_S: "1",
      ALERT_CONCURRENCY: "1",
      INCIDENT_CONFIRM_K: "2",
      INCIDENT_CONFIRM_N: "3",
      INCIDENT_QUIET_WINDOWS: "3",
    };
    engine = spawnEngine("node", env);
    const port = await engine.port();
    await waitReady(port);
    const incidents = async () => {
      const res = await fetch(`${api}/incidents?limit=100`);
      assert.equal(res.status, 200);
      return ((await res.json()) as { incidents: Incident[] }).incidents;
    };

    // 1. The pattern, never seen: one incident, delivered to the backend.
    // Frame time a few hours back: well inside the backend's retention, the whole run in the past.
    const t0 = Math.floor(Date.now() / SECOND) * SECOND - 3 * 3600 * SECOND;
    await stream(port, day(BEFORE.frames, 2, BEFORE.patternAt), t0);
    const at = (t: number) => t0 + t * SECOND;
    const [first] = await waitFor(
      async () => {
        const list = await incidents();
        return list.length > 0 && list.every((i) => i.state === "resolved") ? list : undefined;
      },
      "the pattern's incident, resolved",
      60_000,
      200,
    );
    assert.equal((await incidents()).length, 1, "one incident: the pattern's");
    const started = Date.parse(first.started_at);
    assert.ok(started >= at(BEFORE.patternAt), `started ${first.started_at}`);
    assert.ok(started < at(BEFORE.patternAt + PATTERN.frames), `started ${first.started_at}`);
    const flagged = first.sensors.map((s) => s.feature_idx);
    assert.ok(
      PATTERN.sensors.every((s) => flagged.includes(s)),
      `flagged ${flagged}`,
    );
    await waitFor(
      async () =>
        (await readHistory(join(history, NAME), { model: NAME })).frames.length >=
        BEFORE.frames - 8,
      "the history to hold the stream",
      30_000,
      100,
    );

    // 2. An operator marks it a false positive once; the engine pulls the verdict into the history's index.
    const verdict = await fetch(`${api}/incidents/${first.incident_id}/verdict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        verdict: "false_positive",
        cause: "cleaning cycle",
        by: "operator",
      }),
    });
    assert.equal(verdict.status, 201, await verdict.text());
    await waitFor(
      async () =>
        (await readIndex(join(history, NAME), NAME)).incidents[first.incident_id]?.verdict ===
        "false_positive",
      "the verdict in the history's index",
      30_000,
      100,
    );

    // 3. npm run retrain: the candidate learns the pattern and the gate promotes it.
    const { out, version, report } = await runRetrainCli(NAME, registry, env);
    assert.equal(report.decision, "promoted", out);
    assert.equal(report.active_version, active.version);
    assert.deepEqual(report.reasons, ["not worse than the active version on any criterion"]);
    assert.ok(report.data.false_positive_frames_used >= PATTERN.frames, out);
    // The report says what the verdict changed: the pattern's sensors, and the injected anomalies
    // within what operators called normal left out for both models; on no other sensor.
    const leftOut = report.data.injected.left_out;
    assert.deepEqual(
      leftOut.sensors.map((s) => s.feature),
      PATTERN.sensors.map((s) => `feature_${s}`),
    );
    assert.ok(leftOut.events > 0, out);
    assert.match(
      out,
      /left out: \d+ injected anomalies within what operators judged false positive/,
    );

    // 4. The engine follows the registry's pointer, without a restart.
    await waitFor(
      () => engine?.logs().find((l) => l.msg === "model activated" && l.version === version),
      "the engine to serve the promoted version",
      30_000,
      100,
    );

    // 5. The pattern again: no incident. A spike on another sensor: an incident, from the new version.
    const t1 = at(BEFORE.frames);
    const after = (t: number) => t1 + t * SECOND;
    await stream(
      port,
      day(AFTER.frames, 3, AFTER.patternAt, (t, f, std) => {
        if (t >= AFTER.spikeAt && t < AFTER.spikeAt + 3) {
          f[AFTER.spikeSensor] += 12 * std[AFTER.spikeSensor];
        }
      }),
      t1,
    );
    const spike = await waitFor(
      async () => (await incidents()).find((i) => Date.parse(i.started_at) >= t1),
      "the spike's incident",
      60_000,
      200,
    );
    assert.equal(spike.opened_model_version, version);
    assert.ok(Date.parse(spike.started_at) >= after(AFTER.spikeAt), spike.started_at);
    assert.equal(spike.sensors[0].feature_idx, AFTER.spikeSensor);
    // Delivered in order: had the pattern opened an incident, it would be here before the spike's.
    const all = await incidents();
    assert.deepEqual(
      all.map((i) => i.incident_id).sort(),
      [first.incident_id, spike.incident_id].sort(),
      JSON.stringify(all),
    );
    assert.equal(engine.child.exitCode, null);
  } finally {
    await engine?.kill();
    await backend.stop();
    await database.drop();
    await rm(root, { recursive: true, force: true });
  }
});
