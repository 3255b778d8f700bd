import assert from "node:assert/strict";
import { test } from "node:test";
import { createRunPace } from "./run_pace.ts";

/** Within a tick's share of the 5 s window of `expected`. */
function near(actual: number, expected: number) {
  assert.ok(Math.abs(actual - expected) <= expected * 0.05, `${actual} is not about ${expected}`);
}

test("runPace waits for each tick's due time and measures a run that keeps up", () => {
  let t = 1000;
  const pace = createRunPace({ rateHz: 10, streams: 2, clock: () => t });
  let sent = 0;
  for (let tick = 0; tick < 100; tick++) {
    t += 5;
    sent += 2;
    assert.equal(pace.tickDone(sent), 95);
    t += 95;
  }
  near(pace.achievedHz(sent), 10);
  assert.equal(pace.behindMs(), 0);
  assert.equal(pace.fallingBehind(sent), false);
});

test("runPace drops the ticks of a run that falls behind rather than bursting, and says by how much", () => {
  let t = 0;
  const pace = createRunPace({ rateHz: 10, streams: 1, clock: () => t });
  let sent = 0;
  // Each tick takes 250 ms: 4 frames a second against 10 asked.
  for (let tick = 0; tick < 40; tick++) {
    t += 250;
    sent++;
    assert.equal(pace.tickDone(sent), 0, "no wait while behind");
  }
  near(pace.achievedHz(sent), 4);
  assert.equal(pace.behindMs(), 10_000 - 40 * 100);
  assert.equal(pace.fallingBehind(sent), true);
  // It recovers: the window forgets the slow part, the ticks lost stay counted.
  for (let tick = 0; tick < 100; tick++) {
    t += 10;
    sent++;
    t += pace.tickDone(sent);
  }
  near(pace.achievedHz(sent), 10);
  assert.equal(pace.fallingBehind(sent), false);
  // Up to a second of lateness is caught up; past that the ticks are gone.
  assert.ok(pace.behindMs() >= 5000, `${pace.behindMs()}`);
  pace.finish();
  const ended = pace.achievedHz(sent);
  t += 60_000;
  assert.equal(pace.achievedHz(sent), ended, "a finished run reads as it ended");
});
