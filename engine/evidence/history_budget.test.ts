import assert from "node:assert/strict";
import { test } from "node:test";
import { startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame, startTestEngine } from "../_test/engine_harness.ts";
import { trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";

test("engine says when streams go without incident history: /stats evidence and one warning", async (t) => {
  const model = await trainFixtureModel({ features: 60, name: "history_budget_60" });
  const sink = await startAlertSink();
  const lines: { level: string; msg: string; [field: string]: unknown }[] = [];
  const T0 = Date.UTC(2026, 10, 24, 9);
  // 60 sensors x 5,000 frames is a 1.24 MB ring: a 2 MB budget holds one stream's. The clock
  // stands still, so "at most once a minute" means once here however slow the host.
  const engine = await startTestEngine(
    model,
    sink,
    { EVIDENCE_HISTORY_FRAMES: "5000", EVIDENCE_HISTORY_MAX_MB: "2", LOG_LEVEL: "warn" },
    { write: (line) => void lines.push(JSON.parse(line)), clock: { now: () => T0 + 60_000 } },
  );
  t.after(async () => {
    await engine.stop();
    await sink.close();
    await model.remove();
  });
  let step = 0;
  for (let s = 0; s < 10; s++) {
    for (const stream of ["a", "b"]) {
      const body = jsonFrame(model.featureNames, model.normalFrame(step++), {
        stream_id: stream,
        timestamp: T0 + s * 1000,
      });
      assert.equal((await engine.post(body)).status, 202);
    }
  }
  const warned = () => lines.filter((l) => l.msg.startsWith("streams go without incident history"));
  const window = engine.engine.state.pipeline!.model.metadata.window_size;
  // Every window scored (each frame was kept, or not, before its window was).
  const stats = await waitFor(async () => {
    const s = await engine.stats();
    return s.frames.scored === 2 * (10 - window + 1) && s;
  }, "every window scored");
  assert.deepEqual(stats.evidence, {
    streams: 1,
    capacity: 1,
    bytes: stats.evidence?.bytes,
    ringless: 10,
    evictions: 0,
  });
  assert.deepEqual(
    warned().map((l) => [l.level, l.capacity, l.streams]),
    [["warn", 1, 1]],
    "at most once a minute",
  );
});
