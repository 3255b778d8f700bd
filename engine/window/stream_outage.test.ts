// A stream's reception interval: an outage does not enter it; a slow stream's and a burst producer's gaps do.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SeenMemory } from "./seen_streams.ts";
import { StreamWindows } from "./stream_windows.ts";

const STALE_MS = 60_000;

/** Admits `streamId`'s frames a second apart from `from` to `to` (ms, reception = frame time). */
function run(w: StreamWindows, streamId: string, from: number, to: number) {
  for (let t = from; t <= to; t += 1000) assert.equal(w.admit(streamId, t, t).status, "accepted");
}

const stepOf = (w: StreamWindows, streamId: string) =>
  [...w.lastSeen()].find((s) => s.streamId === streamId)?.step;

/** Asserts the stream's interval is `expected`, give or take its fading over a few minutes. */
function assertStep(w: StreamWindows, streamId: string, expected: number) {
  const step = stepOf(w, streamId) ?? Number.NaN;
  assert.ok(Math.abs(step - expected) <= expected * 0.01, `step ${step}, expected ${expected}`);
}

test("streamWindows lists a 1 Hz line dark a second time past idleMs, as the first time: the outage does not enter its interval", () => {
  const w = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: STALE_MS });
  run(w, "line", 0, 120_000);
  assert.deepEqual(w.silent(120_000 + STALE_MS, STALE_MS), [], "a minute: not yet");
  assert.deepEqual(
    w.silent(120_000 + STALE_MS + 1, STALE_MS).map((s) => s.stream_id),
    ["line"],
  );
  // Dark for 4 times the limit, back for two minutes, dark again.
  run(w, "line", 360_000, 480_000);
  assert.deepEqual(w.silent(480_000 + STALE_MS, STALE_MS), []);
  assert.deepEqual(
    w.silent(480_000 + STALE_MS + 1, STALE_MS).map((s) => s.stream_id),
    ["line"],
    "listed past idleMs the second time too",
  );
  assertStep(w, "line", 1000);
  // What is saved (streams_seen.json, a partition's bus entry) lists it by that interval.
  const memory = new SeenMemory();
  memory.fold([w]);
  const saved = JSON.parse(memory.text()).streams[0];
  assert.equal(saved.step_ms, 1000);
  const restarted = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: STALE_MS });
  assert.deepEqual(
    memory.silent(480_000 + STALE_MS + 1, STALE_MS, [restarted]).map((s) => s.stream_id),
    ["line"],
  );
});

test("streamWindows takes a slow stream's first interval as its step, and keeps it across an outage", () => {
  // A frame every 10 minutes, a 5-minute limit.
  const stale = 300_000;
  const w = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: stale });
  for (let t = 0; t <= 7_200_000; t += 600_000) w.admit("slow", t, t);
  assertStep(w, "slow", 600_000);
  assert.deepEqual(w.silent(7_200_000 + 590_000, stale), [], "not silent between its frames");
  assert.deepEqual(w.silent(7_200_000 + 6_000_000, stale), []);
  assert.deepEqual(
    w.silent(7_200_000 + 6_000_001, stale).map((s) => s.stream_id),
    ["slow"],
  );
  // Dark for two hours, then every 10 minutes again: the same step, the same rule.
  for (let t = 14_400_000; t <= 16_200_000; t += 600_000) w.admit("slow", t, t);
  assertStep(w, "slow", 600_000);
  assert.deepEqual(w.silent(16_200_000 + 590_000, stale), []);
  assert.deepEqual(
    w.silent(16_200_000 + 6_000_001, stale).map((s) => s.stream_id),
    ["slow"],
  );
});

test("streamWindows learns a burst producer's upload gap from its first burst on, and keeps it across an outage", () => {
  const w = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: STALE_MS });
  // A gateway: 300 frames of 1 s sampling sent within 300 ms, every 5 minutes.
  let at = 0;
  let ts = 0;
  const burst = () => {
    for (let i = 0; i < 300; i++) w.admit("gateway", ts++ * 1000, at + i);
  };
  burst();
  // Its first upload gap, 5 minutes of silence after a burst of 300 ms, is listed (nothing
  // tells it from an outage yet) and becomes its interval.
  assert.deepEqual(
    w.silent(at + 299 + STALE_MS + 1, STALE_MS).map((s) => s.stream_id),
    ["gateway"],
  );
  at += 300_000;
  burst();
  assertStep(w, "gateway", 300_000 - 299);
  assert.deepEqual(w.silent(at + 299 + 240_000, STALE_MS), [], "not silent before its next burst");
  // The gateway down for an hour: listed past 10 of its intervals, which the hour does not enter.
  for (let k = 0; k < 3; k++) {
    at += 300_000;
    burst();
  }
  assert.deepEqual(
    w.silent(at + 299 + 3_000_000, STALE_MS).map((s) => s.stream_id),
    ["gateway"],
  );
  at += 3_600_000;
  burst();
  assertStep(w, "gateway", 300_000 - 299);
  at += 300_000;
  burst();
  assert.deepEqual(w.silent(at + 299 + 240_000, STALE_MS), []);
});

test("streamWindows takes a gap as the interval of a stream that went dark before it had sent for idleMs", () => {
  const w = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: STALE_MS });
  run(w, "short", 0, 10_000);
  run(w, "short", 100_000, 110_000);
  assertStep(w, "short", 90_000);
});
