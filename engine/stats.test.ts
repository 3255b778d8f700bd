import assert from "node:assert/strict";
import { test } from "node:test";
import { EngineStats } from "./stats.ts";

const extra = {
  queue: { depth: 0, capacity: 8 },
  alerts: { generated: 0, delivered: 0, outbox: 0 },
  rss_bytes: 1,
};

test("engineStats reports nearest-rank percentiles of frame latency", () => {
  const stats = new EngineStats();
  for (let i = 1; i <= 100; i++) stats.frameScored(i);
  const s = stats.snapshot(extra);
  assert.deepEqual(s.latency_ms, { count: 100, p50: 50, p90: 90, p99: 99, max: 100 });
  assert.equal(s.frames.scored, 100);
});

test("engineStats averages inference time per batch size", () => {
  const stats = new EngineStats();
  stats.batchScored(1, 2);
  stats.batchScored(1, 4);
  stats.batchScored(8, 10);
  const s = stats.snapshot(extra);
  assert.deepEqual(s.inference_ms.by_batch_size, { "1": 3, "8": 10 });
  assert.equal(s.batches, 3);
});

test("engineStats reset zeroes counters and samples", () => {
  const stats = new EngineStats();
  stats.accepted = 5;
  stats.frameScored(3);
  stats.batchScored(1, 1);
  stats.reset();
  const s = stats.snapshot(extra);
  assert.equal(s.frames.accepted, 0);
  assert.equal(s.latency_ms.count, 0);
  assert.equal(s.latency_ms.p99, 0);
  assert.deepEqual(s.inference_ms.by_batch_size, {});
});
