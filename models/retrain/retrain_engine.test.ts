// Retraining end to end: a real engine records its stream, `npm run retrain` trains and promotes a candidate, the engine swaps to it without a restart.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { postFrameUntilTaken, spawnEngine, waitReady } from "../../engine/_test/engine_process.ts";
import { waitFor } from "../../engine/_test/wait_for.ts";
import { readHistory } from "../../engine/history/mod.ts";
import { FEATURES, NAME, plantFrames, T0, trainInto } from "./_test/plant_history.ts";
import { runRetrainCli } from "./_test/retrain_cli.ts";

test("a candidate retrained from the engine's recorded stream is promoted and served without a restart", async () => {
  const root = await mkdtemp(join(tmpdir(), "retrain-engine-"));
  const registry = join(root, "models");
  const history = join(root, "history");
  const { meta: active } = await trainInto(registry, plantFrames(1200, 1), true);
  const env = {
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
  };
  const engine = spawnEngine("node", env);
  try {
    const port = await engine.port();
    await waitReady(port);
    const frames = plantFrames(2000, 2);
    for (let t = 0; t < frames.length; t++) {
      const data = Object.fromEntries(Array.from(frames[t], (x, f) => [`feature_${f}`, x]));
      const body = JSON.stringify({ data, timestamp: T0 + t * 1000, stream_id: "line-1" });
      await postFrameUntilTaken(port, body, `frame ${t}`);
    }
    // Every scored window's newest frame but the last window_size - 1 (and the first window_size - 1,
    // which end no window): on disk within a second.
    await waitFor(
      async () => (await readHistory(join(history, NAME), { model: NAME })).frames.length >= 1992,
      "the history to hold the stream",
      30_000,
      100,
    );

    const { out, version, report } = await runRetrainCli(NAME, registry, env);
    assert.equal(report.decision, "promoted", out);
    assert.equal(report.active_version, active.version);
    assert.ok(report.data.frames_read >= 1992, String(report.data.frames_read));
    assert.equal(report.models.candidate?.version, version);

    // The engine follows the registry's pointer and swaps; the process never restarted.
    await waitFor(
      () => engine.logs().find((l) => l.msg === "model activated" && l.version === version),
      "the engine to serve the promoted version",
      30_000,
      100,
    );
    const models = (await (await fetch(`http://127.0.0.1:${port}/models`)).json()) as {
      models: { name: string; active_version: string; n_features: number }[];
    };
    assert.equal(models.models[0].active_version, version);
    assert.equal(models.models[0].n_features, FEATURES);
    assert.equal(engine.child.exitCode, null);
  } finally {
    await engine.kill();
    await rm(root, { recursive: true, force: true });
  }
});
