import assert from "node:assert/strict";
import { test } from "node:test";
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

test("streamWindows rejects bad options naming the parameter", () => {
  assert.throws(() => new StreamWindows({ windowSize: 0, frameSize: 1 }), /'windowSize'/);
  assert.throws(() => new StreamWindows({ windowSize: 1, frameSize: 1.5 }), /'frameSize'/);
});
