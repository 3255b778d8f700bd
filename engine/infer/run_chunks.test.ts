import assert from "node:assert/strict";
import { test } from "node:test";
import { narrowStatistic } from "./_run_chunks.ts";

test("narrowStatistic reads int64 indices without BigInts, and float32 ones as they are", () => {
  const into = new Int32Array(4);
  // A view that does not start at its buffer's first byte, as ONNX Runtime may hand out.
  const buffer = new BigInt64Array(6);
  const data = new BigInt64Array(buffer.buffer, 8, 4);
  data.set([0n, 4n, 2n, 3n]);
  narrowStatistic(data, into);
  assert.deepEqual([...into], [0, 4, 2, 3]);
  narrowStatistic(Float32Array.of(1, 0, 4, 2), into);
  assert.deepEqual([...into], [1, 0, 4, 2]);
  narrowStatistic([3n, 1n, 0n, 2n], into);
  assert.deepEqual([...into], [3, 1, 0, 2]);
});
