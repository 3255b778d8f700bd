import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../telemetry/logger.ts";
import { ScoringSummary } from "./scoring_summary.ts";
import { EngineStats } from "./stats.ts";

/** A summary over a frame counter the test moves, and the lines it logged. */
function summaryOf() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "engine", write: (l) => lines.push(JSON.parse(l)) });
  const counter = { seen: 0 };
  const summary = new ScoringSummary(log, () => counter.seen);
  return { summary, counter, lines };
}

test("scoringSummary counts each interval's frames from the running total", () => {
  const { summary, counter, lines } = summaryOf();
  counter.seen = 100;
  summary.batch([5, 7], 1, 0);
  summary.flush();
  counter.seen = 130;
  summary.batch([5], 1, 1);
  summary.flush();
  assert.deepEqual(
    lines.map((l) => [l.msg, l.frames, l.windows, l.alerts]),
    [
      ["scoring summary", 100, 2, 0],
      ["scoring summary", 30, 1, 1],
    ],
  );
});

test("scoringSummary counts the frames after a stats reset as the interval's", () => {
  const { summary, counter, lines } = summaryOf();
  counter.seen = 100;
  summary.batch([5], 1, 0);
  summary.flush();
  // POST /stats/reset zeroed the total; 60 frames came after it.
  counter.seen = 60;
  summary.batch(new Array(60).fill(5), 1, 0);
  summary.flush();
  counter.seen = 110;
  summary.batch(new Array(50).fill(5), 1, 0);
  summary.flush();
  assert.deepEqual(
    lines.map((l) => l.frames),
    [100, 60, 50],
  );
});

test("scoringSummary over the engine's stats counts every frame of an interval holding a reset", () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "engine", write: (l) => lines.push(JSON.parse(l)) });
  const stats = new EngineStats();
  // As the engine wires it (engine.ts): the reset of /stats must not reach the summary.
  const summary = new ScoringSummary(log, () => stats.acceptedSinceStart);
  stats.accepted = 24;
  summary.batch(new Array(20).fill(5), 1, 0);
  summary.flush();
  stats.accepted += 3;
  stats.reset(); // POST /stats/reset
  stats.accepted += 30;
  summary.batch(new Array(33).fill(5), 1, 0);
  summary.flush();
  assert.deepEqual(
    lines.map((l) => l.frames),
    [24, 33],
  );
});

test("scoringSummary logs nothing for an interval without frames or windows", () => {
  const { summary, counter, lines } = summaryOf();
  counter.seen = 5;
  summary.flush();
  summary.flush();
  assert.equal(lines.length, 1);
});
