import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamFeatures, WindowShape } from "./window_features.ts";

test("streamFeatures gives its last readings as they arrived, running levels undone", () => {
  const shape = new WindowShape({
    windowSize: 3,
    frameSize: 2,
    baseline: { alpha: 0.5, span: 4, features: [1] },
  });
  const stream = new StreamFeatures(shape);
  assert.equal(stream.lastReadings().length, 0);
  const into = new Float32Array(6);
  const frames = [
    [1, 10],
    [2, 14],
    [3, 9],
    [4, 20],
  ].map((f) => Float32Array.from(f));
  stream.push(frames[0], into);
  assert.deepEqual([...stream.lastReadings()], [1, 10]);
  for (const f of frames.slice(1)) stream.push(f, into);
  // The window holds deviations from the level for feature 1; the readings come back as sent.
  assert.notEqual(into[5], 20);
  assert.deepEqual([...stream.lastReadings()], [2, 14, 3, 9, 4, 20]);
});

test("streamFeatures replayed from its last readings under another shape gives that shape's windows", () => {
  const before = new WindowShape({ windowSize: 2, frameSize: 2 });
  const after = new WindowShape({
    windowSize: 2,
    frameSize: 2,
    baseline: { alpha: 1, span: 1, features: [0] },
  });
  const stream = new StreamFeatures(before);
  const into = new Float32Array(4);
  for (const f of [
    [5, 1],
    [7, 2],
    [8, 3],
  ])
    stream.push(Float32Array.from(f), into);
  const rebuilt = new StreamFeatures(after);
  const last = stream.lastReadings();
  for (let t = 0; t < last.length / 2; t++) rebuilt.push(last.subarray(t * 2, t * 2 + 2), into);
  // alpha 1, span 1: the level is the previous reading, so feature 0 reads 8 - 7 = 1.
  assert.equal(rebuilt.push(Float32Array.of(10, 4), into), true);
  assert.deepEqual([...into], [1, 3, 2, 4]);
});
