import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { RingBuffer } from "./ring_buffer.ts";

test("ringBuffer rounds its capacity up to a power of two", () => {
  assert.equal(new RingBuffer(1).capacity, 1);
  assert.equal(new RingBuffer(100).capacity, 128);
  assert.equal(new RingBuffer(128).capacity, 128);
});

test("ringBuffer rejects a push when full and keeps its contents", () => {
  const ring = new RingBuffer(2);
  assert.equal(ring.push(1), true);
  assert.equal(ring.push(2), true);
  assert.equal(ring.push(3), false);
  assert.equal(ring.shift(), 1);
  assert.equal(ring.shift(), 2);
  assert.equal(ring.shift(), -1);
});

test("ringBuffer rejects a capacity outside 1..2^30 naming the parameter", () => {
  assert.throws(() => new RingBuffer(0), /'minCapacity'/);
  assert.throws(() => new RingBuffer(1.5), /'minCapacity'/);
});

test("ringBuffer behaves like an array queue under any push/shift sequence", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.array(fc.integer({ min: -1, max: 1000 })),
      (size, ops) => {
        const ring = new RingBuffer(size);
        const model: number[] = [];
        for (const op of ops) {
          if (op < 0) {
            assert.equal(ring.peek(), model.length ? model[0] : -1);
            assert.equal(ring.shift(), model.length ? model.shift() : -1);
          } else {
            const pushed = ring.push(op);
            assert.equal(pushed, model.length < ring.capacity);
            if (pushed) model.push(op);
          }
          assert.equal(ring.length, model.length);
        }
      },
    ),
  );
});
