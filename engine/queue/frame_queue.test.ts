import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameQueue } from "./frame_queue.ts";

const meta = (streamId: string, timestamp: number) => ({
  streamId,
  timestamp,
  receivedAt: 0,
  span: undefined,
});

test("frameQueue hands out every slab once and refuses when all are in use", () => {
  const queue = new FrameQueue({ capacity: 3, frameSize: 4 });
  const slots = [queue.reserve(), queue.reserve(), queue.reserve()];
  assert.deepEqual([...slots].sort(), [0, 1, 2]);
  assert.equal(queue.reserve(), -1);
  assert.equal(queue.used, 3);
  queue.release(slots[1]);
  assert.equal(queue.reserve(), slots[1]);
});

test("frameQueue slabs share one SharedArrayBuffer without overlapping", () => {
  const queue = new FrameQueue({ capacity: 2, frameSize: 3 });
  const a = queue.slab(queue.reserve());
  const b = queue.slab(queue.reserve());
  assert.ok(a.buffer instanceof SharedArrayBuffer);
  assert.equal(a.buffer, b.buffer);
  a.fill(1);
  b.fill(2);
  assert.deepEqual([...a], [1, 1, 1]);
});

test("frameQueue yields committed slots in commit order, not reservation order", () => {
  const queue = new FrameQueue({ capacity: 4, frameSize: 1 });
  const first = queue.reserve();
  const second = queue.reserve();
  queue.commit(second, meta("b", 2));
  queue.commit(first, meta("a", 1));
  assert.equal(queue.depth, 2);
  const taken = queue.take();
  assert.equal(taken, second);
  assert.equal(queue.streamId(taken), "b");
  assert.equal(queue.timestamp(taken), 2);
  assert.equal(queue.take(), first);
  assert.equal(queue.take(), -1);
});

test("frameQueue wakes a waiting consumer on commit", async () => {
  const queue = new FrameQueue({ capacity: 1, frameSize: 1 });
  let woken = false;
  const waiting = queue.waitForFrames().then(() => {
    woken = true;
  });
  await Promise.resolve();
  assert.equal(woken, false);
  queue.commit(queue.reserve(), meta("a", 1));
  await waiting;
  assert.equal(woken, true);
});

test("frameQueue stops waiting when the signal aborts", async () => {
  const queue = new FrameQueue({ capacity: 1, frameSize: 1 });
  const controller = new AbortController();
  const waiting = queue.waitForFrames(controller.signal);
  controller.abort();
  await waiting;
  assert.equal(queue.depth, 0);
});

test("frameQueue rejects bad options naming the parameter", () => {
  assert.throws(() => new FrameQueue({ capacity: 0, frameSize: 1 }), /'capacity'/);
  assert.throws(() => new FrameQueue({ capacity: 1, frameSize: 0 }), /'frameSize'/);
});
