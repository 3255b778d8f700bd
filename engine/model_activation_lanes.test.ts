import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { jsonFrame } from "./_test/engine_harness.ts";
import { heldUpload } from "./_test/held_upload.ts";
import type { ModelFixture } from "./_test/model_fixture.ts";
import { ADMIN_TOKEN, trainedRegistry } from "./_test/registry_engine.ts";
import { waitFor } from "./_test/wait_for.ts";
import { readHistory } from "./history/mod.ts";

const BASE_TS = Date.UTC(2026, 11, 1);

// Real engine processes serving two models: `boiler` (every stream but line-b-*) and
// `packaging` (line-b-*), whose registry holds a 9-sensor version (active) and a 7-sensor one.
describe("a reset_windows activation with two models served", () => {
  const reg = trainedRegistry([
    { features: 12, name: "boiler" },
    { features: 9, name: "packaging" },
    { features: 7, name: "packaging", frames: 320 },
  ]);
  const { metas } = reg;
  let boiler: ModelFixture;
  let packaging: ModelFixture[] = [];
  before(() => {
    [boiler, ...packaging] = reg.models;
  });

  async function startEngine(env: Record<string, string> = {}) {
    // Each engine starts on the 9-sensor version.
    await reg.registry.activate("packaging", metas[1].version, { by: "test", reason: "" });
    const { engine, port, url } = await reg.start({ MODEL_ROUTES: "line-b-*=packaging", ...env });
    const body = (f: ModelFixture, stream: string, i: number) =>
      jsonFrame(f.featureNames, f.normalFrame(i), {
        stream_id: stream,
        timestamp: BASE_TS + i * 1000,
      });
    return {
      engine,
      port,
      body,
      send: (f: ModelFixture, stream: string, i: number) =>
        fetch(url("/data-enqueue"), { method: "POST", body: body(f, stream, i) }),
      activate: (version: string) =>
        fetch(url("/models/packaging/activate"), {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ version, reset_windows: true }),
        }),
      /** `stream@timestamp` of every window scored, by model. */
      scored: (model: string) =>
        engine
          .logs()
          .filter((l) => l.msg === "batch scored" && l.model === model)
          .flatMap((l) =>
            (l.frames as { stream_id: string; timestamp: string }[]).map(
              (f) => `${f.stream_id}@${f.timestamp}`,
            ),
          ),
    };
  }

  /** Sends the first 10 bytes of `text` now; `finish` sends the rest. */
  const held = (port: number, text: string) =>
    heldUpload(port, text, { firstBytes: 10, headers: { "content-type": "application/json" } });

  test("uploads held open across it end 202, never 500, whichever model they belong to", async () => {
    const e = await startEngine({ HISTORY_MAX_BYTES: "0" });
    try {
      const W = metas[1].window_size;
      for (let i = 0; i < W - 1; i++) {
        assert.equal((await e.send(packaging[0], "line-b-1", i)).status, 202);
      }
      // One frame of the other model and the one completing line-b-1's window, both mid-body.
      const other = held(e.port, e.body(boiler, "boiler-1", 0));
      const last = held(e.port, e.body(packaging[0], "line-b-1", W - 1));
      // Their headers and first bytes are out before the activation is asked for; it loads and
      // warms the version before it switches the intake, so both take the old intake.
      await Promise.all([other.sent, last.sent]);
      const activation = e.activate(metas[2].version);
      let activated = false;
      void activation.then(() => {
        activated = true;
      });
      // The intake takes the new sensors at once; the activation then waits for the uploads
      // (or, before this fix, went on and closed the intake they were decoded with).
      await waitFor(
        async () => (await e.send(packaging[1], "line-b-2", 0)).status === 202,
        "the intake to take the new sensors",
      );
      await waitFor(
        () =>
          activated ||
          e.engine
            .logs()
            .some((l) => l.msg === "activation waits for uploads in flight on the previous intake"),
        "the activation to wait for the uploads, or end",
      );
      other.finish();
      last.finish();
      const answers = await Promise.all([other.answer, last.answer]);
      assert.deepEqual(
        answers.map((a) => a.status),
        [202, 202],
        answers.map((a) => a.body).join("\n"),
      );
      assert.equal((await activation).status, 200);
      // The frame read with the old sensors is scored by the version it was read for.
      const end = new Date(BASE_TS + (W - 1) * 1000).toISOString();
      await waitFor(() => e.scored("packaging").includes(`line-b-1@${end}`), "its window scored");
      assert.deepEqual(
        e.engine.logs().filter((l) => l.level === "error"),
        [],
      );
    } finally {
      await e.engine.kill();
    }
  });

  test("the old version's last batch goes to the training history under the old model", async () => {
    const data = await mkdtemp(join(tmpdir(), "activation-lanes-data-"));
    // A long batch delay: the old version's last batch is still collecting when the intake switches.
    const e = await startEngine({
      DATA_DIR: data,
      BATCH_MAX_DELAY_MS: "1000",
      HISTORY_EVERY_N: "1",
      HISTORY_RUN_FRAMES: "120",
      DECISIONS_POLL_S: "0",
    });
    try {
      const FRAMES = 30;
      for (let i = 0; i < FRAMES; i++) {
        assert.equal((await e.send(packaging[0], "line-b-1", i)).status, 202);
      }
      assert.equal((await e.activate(metas[2].version)).status, 200);
      for (let i = FRAMES; i < FRAMES + 10; i++) {
        assert.equal((await e.send(packaging[1], "line-b-1", i)).status, 202);
      }
      const W = metas[2].window_size;
      await waitFor(
        () => e.scored("packaging").length >= FRAMES - W + 1 + 10 - W + 1,
        "every window scored",
      );
      assert.equal(await e.engine.kill("SIGTERM"), 0);
      const history = await readHistory(join(data, "history", "packaging"), {
        model: "packaging",
        featureNames: packaging[0].featureNames,
      });
      assert.deepEqual(history.index.excluded, {}, "no window refused as the new model's");
      // Every window the 9-sensor version scored, its last batch's included, up to the frames
      // a later window of that version could still have reached (held, then dropped at the switch).
      const W9 = metas[1].window_size;
      assert.deepEqual(
        history.frames.map((f) => (f.timestamp - BASE_TS) / 1000),
        Array.from({ length: FRAMES - 2 * (W9 - 1) }, (_, k) => W9 - 1 + k),
      );
    } finally {
      await e.engine.kill();
      await rm(data, { recursive: true, force: true });
    }
  });
});
