import assert from "node:assert/strict";
import { test } from "node:test";
import { FRAME_OVERHEAD_BYTES, frameCost, ReadAheadBudget } from "./partition_reader.ts";

const BUDGET = 32 * 2 ** 20;

test("readAheadBudget charges each frame its values and what holding it costs", () => {
  assert.equal(frameCost(new Float32Array(12)), 48 + FRAME_OVERHEAD_BYTES);
  // A 12-feature worker held some 1.3 KB per buffered frame (48 bytes of values): its 32 MiB
  // budget holds no more frames than that memory allows, not 32 MiB / 48 = 699,050.
  const budget = new ReadAheadBudget(BUDGET);
  assert.ok(budget.capacity(12) <= BUDGET / 1300, `capacity ${budget.capacity(12)}`);
  assert.equal(budget.capacity(25_000), Math.floor(BUDGET / (100_000 + FRAME_OVERHEAD_BYTES)));
  for (let i = 0; i < budget.capacity(12); i++) budget.take(frameCost(new Float32Array(12)));
  assert.equal(budget.full, false);
  budget.take(frameCost(new Float32Array(12)));
  assert.equal(budget.full, true, "one frame past the capacity fills it");
});

test("readAheadBudget room resolves once half is released, or false when its signal aborts first", async () => {
  const budget = new ReadAheadBudget(1000);
  assert.equal(await budget.room(), true);
  budget.take(1000);
  const controller = new AbortController();
  const waiting = budget.room(controller.signal);
  controller.abort();
  assert.equal(await waiting, false, "still full when the wait ended");
  const resumed = budget.room(AbortSignal.timeout(60_000));
  budget.release(600);
  assert.equal(await resumed, true);
});
