import assert from "node:assert/strict";
import { test } from "node:test";
import { historySize } from "./history_size.ts";

test("historySize projects one stream's day at 1 Hz and how long the cap holds it", () => {
  const s = historySize({
    bytesPerFrame: 100_000,
    everyN: 1,
    runFrames: 300,
    maxBytes: 8.64e9,
    rateHz: 1,
  });
  assert.equal(s.frames_per_stream_day, 86_400);
  assert.equal(s.days_held_one_stream, 1);
  assert.equal(s.hours_held_one_stream, 24);
});

test("historySize keeps one run in every N", () => {
  const s = historySize({
    bytesPerFrame: 100_000,
    everyN: 4,
    runFrames: 300,
    maxBytes: 8.64e9,
    rateHz: 1,
  });
  assert.equal(s.frames_per_stream_day, 21_600);
  assert.equal(s.days_held_one_stream, 4);
});

test("historySize rejects a zero rate", () => {
  assert.throws(
    () => historySize({ bytesPerFrame: 1, everyN: 1, runFrames: 300, maxBytes: 1, rateHz: 0 }),
    /'rateHz' must be a positive number, got 0/,
  );
});
