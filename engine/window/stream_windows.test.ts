import assert from "node:assert/strict";
import { test } from "node:test";
import { WindowShape } from "../../scoring/window_features.ts";
import { StreamWindows } from "./stream_windows.ts";

const frame = (value: number) => new Float32Array([value, value + 0.5]);

test("streamWindows yields no window until a stream has window_size frames", () => {
  const windows = new StreamWindows({ windowSize: 3, frameSize: 2 });
  const into = new Float32Array(6);
  assert.equal(windows.push("a", frame(1), into), false);
  assert.equal(windows.push("a", frame(2), into), false);
  assert.equal(windows.push("a", frame(3), into), true);
  assert.deepEqual([...into], [1, 1.5, 2, 2.5, 3, 3.5]);
});

test("streamWindows slides by one frame, oldest first, per stream", () => {
  const windows = new StreamWindows({ windowSize: 3, frameSize: 2 });
  const into = new Float32Array(6);
  for (let i = 1; i <= 3; i++) windows.push("a", frame(i), into);
  windows.push("b", frame(100), into);
  assert.equal(windows.push("a", frame(4), into), true);
  assert.deepEqual([...into], [2, 2.5, 3, 3.5, 4, 4.5]);
  assert.equal(windows.push("a", frame(5), into), true);
  assert.deepEqual([...into], [3, 3.5, 4, 4.5, 5, 5.5]);
});

test("streamWindows accepts a repeated timestamp once and reports it as a duplicate", () => {
  const windows = new StreamWindows({ windowSize: 2, frameSize: 1 });
  assert.deepEqual(windows.admit("a", 1000, 0), { status: "accepted", timestamp: 1000 });
  assert.deepEqual(windows.admit("a", 2000, 0), { status: "accepted", timestamp: 2000 });
  assert.equal(windows.admit("a", 1000, 0).status, "duplicate");
  assert.equal(windows.admit("a", 2000, 0).status, "duplicate");
  assert.equal(windows.admit("b", 1000, 0).status, "accepted");
});

test("streamWindows rejects a frame older than the stream's newest as out of order", () => {
  const windows = new StreamWindows({ windowSize: 2, frameSize: 1 });
  windows.admit("a", 1000, 0);
  windows.admit("a", 3000, 0);
  assert.deepEqual(windows.admit("a", 2000, 0), {
    status: "out_of_order",
    timestamp: 2000,
    newest: 3000,
  });
});

test("streamWindows makes reception times strictly increasing per stream", () => {
  const windows = new StreamWindows({ windowSize: 2, frameSize: 1 });
  const stamps = [5000, 5000, 5000, 4000, 9000].map((now) => windows.admit("a", undefined, now));
  assert.deepEqual(
    stamps.map((a) => [a.status, a.timestamp]),
    [
      ["accepted", 5000],
      ["accepted", 5001],
      ["accepted", 5002],
      ["accepted", 5003],
      ["accepted", 9000],
    ],
  );
});

test("streamWindows forgets the least recently active stream beyond maxStreams", () => {
  const windows = new StreamWindows({ windowSize: 1, frameSize: 1, maxStreams: 2 });
  windows.admit("a", 10, 0);
  windows.admit("b", 10, 0);
  windows.admit("a", 20, 0);
  windows.admit("c", 10, 0);
  assert.equal(windows.streams, 2);
  // "b" was forgotten, so its old timestamp is new again; "a" was kept.
  assert.equal(windows.admit("b", 10, 0).status, "accepted");
  assert.equal(windows.admit("c", 10, 0).status, "duplicate");
});

test("streamWindows refuses a new stream while every place is held by a stream active within idleMs, and gives it the place of one silent that long", () => {
  const windows = new StreamWindows({ windowSize: 2, frameSize: 1, maxStreams: 2, idleMs: 1000 });
  const window = new Float32Array(2);
  for (const [id, t] of [
    ["a", 0],
    ["b", 100],
    ["a", 500],
  ] as const) {
    assert.equal(windows.admit(id, t, t).status, "accepted");
    windows.push(id, Float32Array.of(t), window);
  }
  // Both active within the last second: "c" is refused and the others keep their windows.
  assert.deepEqual(windows.admit("c", 900, 900), {
    status: "too_many_streams",
    timestamp: 900,
    maxStreams: 2,
  });
  assert.equal(windows.refused, 1);
  assert.equal(windows.admit("b", 950, 950).status, "accepted");
  assert.equal(windows.push("b", Float32Array.of(950), window), true, "b's window went on");
  // "a" has been silent for a second: "c" takes its place.
  assert.equal(windows.admit("c", 1500, 1500).status, "accepted");
  assert.deepEqual([...windows.streamIds()].sort(), ["b", "c"]);
});

test("streamWindows keeps a stream's place for accepted frames only: a refused or repeated one leaves a silent stream silent", () => {
  const windows = new StreamWindows({ windowSize: 2, frameSize: 1, maxStreams: 2, idleMs: 1000 });
  assert.equal(windows.admit("a", 1000, 0, 1).status, "accepted");
  assert.equal(windows.admit("b", 1000, 1500, 1).status, "accepted");
  // At 2000, "a" has sent nothing accepted for 2 s: an older frame, a repeat, and a frame at the
  // same millisecond with other values change nothing about that.
  assert.equal(windows.admit("a", 500, 2000, 1).status, "out_of_order");
  assert.equal(windows.admit("a", 1000, 2000, 1).status, "duplicate");
  assert.equal(windows.admit("a", 1000, 2000, 2).status, "collision");
  // So "c" takes the place of "a", the least recently active, not of "b" (active 0.5 s ago).
  assert.equal(windows.admit("c", 1000, 2000, 1).status, "accepted");
  assert.deepEqual([...windows.streamIds()].sort(), ["b", "c"]);
  assert.equal(windows.refused, 0);
});

test("streamWindows rejects bad options naming the parameter", () => {
  assert.throws(() => new StreamWindows({ windowSize: 0, frameSize: 1 }), /'windowSize'/);
  assert.throws(() => new StreamWindows({ windowSize: 1, frameSize: 1.5 }), /'frameSize'/);
});

test("streamWindows applies the model's running levels per stream, and keeps the readings beside the window", () => {
  // Feature 1 follows a running level (alpha 0.5, over the last 2 readings); feature 0 is raw.
  const windows = StreamWindows.forModel({
    window_size: 2,
    n_features: 2,
    baseline: { description: "", alpha: 0.5, span: 2, features: [1] },
  });
  assert.equal(windows.shape.baselineSize, 1);
  assert.deepEqual([...windows.shape.baselineIndex], [-1, 0]);
  const into = new Float32Array(4);
  const raw = new Float32Array(2);
  assert.equal(windows.push("a", Float32Array.of(1, 10), into, raw), false);
  // Another stream has its own level.
  windows.push("b", Float32Array.of(1, 500), new Float32Array(4));
  assert.equal(windows.push("a", Float32Array.of(2, 14), into, raw), true);
  // Readings 10 then 14; levels 10 (its own), then 10: the model sees 0 and 4.
  assert.deepEqual([...into], [1, 0, 2, 4]);
  assert.deepEqual([...raw], [10, 14]);
  assert.equal(windows.push("a", Float32Array.of(3, 16), into, raw), true);
  // Level (14 + 0.5 * 10) / 1.5 for the third reading.
  assert.equal(into[3], Math.fround(16 - 19 / 1.5));
  assert.deepEqual([...raw], [14, 16]);
  // The caller's frame is not changed.
  const frame = Float32Array.of(4, 20);
  windows.push("a", frame, into, raw);
  assert.deepEqual([...frame], [4, 20]);
  assert.throws(
    () =>
      new StreamWindows({
        windowSize: 1,
        frameSize: 2,
        baseline: { alpha: 0.5, span: 2, features: [2] },
      }),
    /baseline.features must be ascending distinct indices below 2/,
  );
});

test("streamWindows rebuilt from a window and the levels' span gives the same windows, glitch or not", () => {
  const meta = {
    window_size: 3,
    n_features: 2,
    baseline: { description: "", alpha: 0.2, span: 75, features: [1] },
  };
  // What a scale-out worker re-reads: the window's other frames and the span before them.
  const keep = StreamWindows.forModel(meta).shape.rebuildFrames;
  assert.equal(keep, meta.window_size - 1 + meta.baseline.span);
  const frames = Array.from({ length: 200 }, (_, t) =>
    Float32Array.of(t % 7, 50 + 0.3 * t + Math.sin(t)),
  );
  frames[frames.length - 1 - keep][1] += 1e6;
  const whole = StreamWindows.forModel(meta);
  const rebuilt = StreamWindows.forModel(meta);
  const a = new Float32Array(6);
  const b = new Float32Array(6);
  for (const [t, x] of frames.entries()) {
    whole.push("s", x, a);
    if (t >= frames.length - 1 - keep) rebuilt.push("s", x, b);
  }
  assert.deepEqual([...b], [...a]);
});

test("streamWindows adopts a new model between batches: windows carried, levels rebuilt, or reset", () => {
  const windows = new StreamWindows({ windowSize: 2, frameSize: 2 });
  const into = new Float32Array(4);
  windows.admit("a", 1, 0);
  windows.push("a", Float32Array.of(5, 1), into);
  windows.admit("a", 2, 0);
  windows.push("a", Float32Array.of(7, 2), into);
  // Same shape: the window goes on at the next frame.
  assert.equal(windows.adopt(new WindowShape({ windowSize: 2, frameSize: 2 }), "carry"), 1);
  assert.equal(windows.push("a", Float32Array.of(8, 3), into), true);
  assert.deepEqual([...into], [7, 2, 8, 3]);
  // Other running levels: rebuilt from the readings held (level of feature 0 = previous reading).
  windows.adopt(
    new WindowShape({
      windowSize: 2,
      frameSize: 2,
      baseline: { alpha: 1, span: 1, features: [0] },
    }),
    "carry",
  );
  assert.equal(windows.push("a", Float32Array.of(10, 4), into), true);
  assert.deepEqual([...into], [1, 3, 2, 4]);
  // Another window size cannot be carried; reset starts afresh but keeps the ordering state.
  assert.throws(() => windows.adopt(new WindowShape({ windowSize: 3, frameSize: 2 }), "carry"));
  windows.adopt(new WindowShape({ windowSize: 3, frameSize: 3 }), "reset");
  assert.equal(windows.push("a", Float32Array.of(1, 2, 3), new Float32Array(9)), false);
  assert.equal(windows.admit("a", 2, 0).status, "duplicate");
});

test("streamWindows lists the streams silent past idleMs and past 10 of their own intervals, longest silent first", () => {
  const w = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: 60_000 });
  const iso = (ms: number) => new Date(ms).toISOString();
  // fast: a frame a second until 10 s; later: a second until 50 s; slow: a frame every 10 minutes.
  w.admit("slow", 0, 0);
  for (let t = 0; t <= 10_000; t += 1000) w.admit("fast", t, t);
  for (let t = 40_000; t <= 50_000; t += 1000) w.admit("later", t, t);
  assert.deepEqual(w.silent(60_000, 60_000), [], "nothing quiet for a minute yet");
  w.admit("slow", 600_000, 600_000);
  assert.deepEqual(w.silent(700_000, 60_000), [
    { stream_id: "fast", last_accepted_at: iso(10_000) },
    { stream_id: "later", last_accepted_at: iso(50_000) },
  ]);
  // The slow stream is silent only past 10 of its 10-minute intervals.
  assert.deepEqual(
    w.silent(600_000 + 6_000_001, 60_000).map((s) => s.stream_id),
    ["fast", "later", "slow"],
  );
  assert.deepEqual(
    w.silent(700_000, 60_000, 1),
    [{ stream_id: "later", last_accepted_at: iso(50_000) }],
    "at most max, the most recently silent",
  );
  // A frame again: no longer silent. A refused or repeated frame changes nothing.
  w.admit("fast", 700_000, 700_000);
  w.admit("later", 50_000, 700_000); // a repeat of its last frame: a duplicate
  assert.deepEqual(
    w.silent(710_000, 60_000).map((s) => s.stream_id),
    ["later"],
  );
});

test("streamWindows does not list a producer that sends in bursts as silent between them, and lists one whose frames are all refused", () => {
  const w = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: 60_000 });
  // A gateway: 300 frames of 1 s sampling sent within 300 ms, every 5 minutes, for an hour.
  let at = 0;
  let ts = 0;
  for (let burst = 0; burst < 12; burst++) {
    for (let i = 0; i < 300; i++) w.admit("gateway", ts++ * 1000, at + i);
    at += 300_000;
  }
  // 4 minutes after its last burst: its step is the 5 minutes between bursts.
  assert.deepEqual(w.silent(at - 300_000 + 240_000, 60_000), []);
  // A clock set back: every frame refused out of order, the stream listed from its last accepted.
  const v = new StreamWindows({ windowSize: 2, frameSize: 1, idleMs: 60_000 });
  v.admit("clock", 10_000, 10_000);
  v.admit("clock", 11_000, 11_000);
  for (let t = 12_000; t < 100_000; t += 1000) {
    assert.equal(v.admit("clock", 5_000, t).status, "out_of_order");
  }
  assert.deepEqual(
    v.silent(100_000, 60_000).map((s) => [s.stream_id, s.last_accepted_at]),
    [["clock", new Date(11_000).toISOString()]],
  );
});
