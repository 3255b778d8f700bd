import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { createProblemLog } from "./problem_log.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "backend", write: (l) => lines.push(JSON.parse(l)) });
  return { log, lines };
}

test("problemLog logs a new problem at once, then the same one at most once a minute with a count", () => {
  const { log, lines } = capture();
  let t = 0;
  const report = createProblemLog("frame not delivered", { log, clock: () => t });
  report("frame_missing_features", { stream_id: "default" });
  for (let i = 0; i < 9; i++) {
    t += 1000;
    report("frame_missing_features", { stream_id: "default" });
  }
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg, l.count]),
    [["warn", "frame not delivered", 1]],
  );
  report("queue_full", { stream_id: "plant-1" });
  assert.deepEqual(lines.at(-1)?.count, 1, "another problem is logged at once");
  t = 60_000;
  report("frame_missing_features", { stream_id: "default" });
  assert.equal(lines.length, 3);
  assert.deepEqual([lines[2].stream_id, lines[2].count], ["default", 10]);
});
