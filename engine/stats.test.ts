import assert from "node:assert/strict";
import { test } from "node:test";
import { EngineStats } from "./stats.ts";

const extra = {
  queue: { depth: 0, capacity: 8 },
  alerts: { generated: 0, delivered: 0, outbox: 0 },
  rss_bytes: 1,
};

test("engineStats reports nearest-rank percentiles of frame latency, exact below 2 ms", () => {
  const stats = new EngineStats();
  for (let i = 1; i <= 100; i++) stats.frameScored(i / 50);
  const s = stats.snapshot(extra);
  assert.deepEqual(s.latency_ms, { count: 100, p50: 1, p90: 1.8, p99: 1.98, max: 2 });
  assert.equal(s.frames.scored, 100);
});

test("engineStats reports percentiles above 2 ms within 0.1 % and the exact maximum", () => {
  const stats = new EngineStats();
  for (let i = 1; i <= 100; i++) stats.frameScored(i);
  for (let i = 1; i <= 1000; i++) stats.batchScored(1, i * 7.3);
  const s = stats.snapshot(extra);
  const near = (got: number, want: number) =>
    assert.ok(got >= want && got <= want * 1.001, `${got} is not within 0.1 % above ${want}`);
  near(s.latency_ms.p50, 50);
  near(s.latency_ms.p90, 90);
  near(s.latency_ms.p99, 99);
  assert.equal(s.latency_ms.max, 100);
  near(s.inference_ms.p50, 500 * 7.3);
  near(s.inference_ms.p99, 990 * 7.3);
  const one = new EngineStats();
  one.frameScored(123.456);
  assert.deepEqual(
    [one.snapshot(extra).latency_ms.p50, one.snapshot(extra).latency_ms.max],
    [123.456, 123.456],
    "a percentile is never above the largest sample",
  );
});

test("engineStats percentiles count every sample since the reset and a read sorts none", (t) => {
  const stats = new EngineStats();
  // Over a million fast frames, then as many slow ones: the median is still the fast ones'.
  for (let i = 0; i < 1 << 20; i++) stats.frameScored(1);
  for (let i = 0; i < (1 << 20) - 1; i++) stats.frameScored(100);
  for (let i = 0; i < 1 << 20; i++) stats.batchScored(8, 3);
  const sort = t.mock.method(Float64Array.prototype, "sort");
  const s = stats.snapshot(extra);
  // A read costs the same at any sample count: no sample is copied or sorted.
  const sorted = sort.mock.calls.reduce((n, call) => n + (call.this as Float64Array).length, 0);
  assert.equal(sorted, 0, `${sorted} samples sorted by one read`);
  assert.equal(s.latency_ms.count, (1 << 21) - 1);
  assert.equal(s.latency_ms.p50, 1);
  assert.equal(s.latency_ms.max, 100);
  assert.equal(s.inference_ms.p99, 3);
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

test("engineStats shows the decisions copy only while a client reports it, and a reset keeps it", () => {
  const stats = new EngineStats();
  assert.equal("decisions" in stats.snapshot(extra), false, "client off: no block");
  const resource = {
    held: null,
    fetched_at: null,
    age_s: null,
    last: "failed" as const,
    last_error: "http://backend/api/v1/silences/effective: fetch failed",
    unsaved: null,
  };
  const report = {
    stale: true,
    why: "silences: no copy held (never pulled)",
    stale_after_s: 90,
    silences: resource,
    verdicts: { ...resource, held: 3, age_s: 12.5, last: "unchanged" as const, last_error: null },
  };
  stats.decisions = () => report;
  assert.deepEqual(stats.snapshot(extra).decisions, report);
  stats.reset();
  assert.deepEqual(stats.snapshot(extra).decisions, report);
});

test("engineStats shows the incident history budget where the engine reports it", () => {
  const stats = new EngineStats();
  assert.equal(stats.snapshot(extra).evidence, undefined);
  const budget = { streams: 1, capacity: 1, bytes: 48, ringless: 7, evictions: 0 };
  stats.evidence = () => budget;
  assert.deepEqual(stats.snapshot(extra).evidence, budget);
});

test("engineStats counts alerts from the last reset, as every other counter", () => {
  const stats = new EngineStats();
  const counts = { generated: 5, delivered: 4 };
  stats.alertCounts = () => counts;
  const alerts = () => ({ ...counts, outbox: 1 });
  assert.deepEqual(stats.snapshot({ ...extra, alerts: alerts() }).alerts, {
    generated: 5,
    delivered: 4,
    outbox: 1,
  });
  stats.reset();
  assert.deepEqual(stats.snapshot({ ...extra, alerts: alerts() }).alerts, {
    generated: 0,
    delivered: 0,
    outbox: 1,
  });
  counts.generated = 7;
  counts.delivered = 7;
  assert.deepEqual(stats.snapshot({ ...extra, alerts: alerts() }).alerts, {
    generated: 2,
    delivered: 3,
    outbox: 1,
  });
});

test("engineStats keeps the frames accepted since start across resets", () => {
  const stats = new EngineStats();
  stats.accepted = 27;
  stats.reset();
  stats.accepted += 30;
  assert.equal(stats.snapshot(extra).frames.accepted, 30);
  assert.equal(stats.acceptedSinceStart, 57);
});

test("engineStats lists each served model's own counters, in the order served, zeros for one that scored nothing, and a reset clears them", () => {
  const stats = new EngineStats();
  for (let i = 0; i < 3; i++) stats.acceptedBy("boiler");
  stats.acceptedBy("packaging");
  stats.frameScored(2, "boiler");
  stats.frameScored(4, "boiler");
  stats.frameScored(9, "packaging");
  stats.batchScored(2, 1.5, "boiler");
  stats.batchScored(1, 0.5, "packaging");
  const served = [
    { name: "packaging", queue: { depth: 1, capacity: 4 } },
    { name: "boiler", queue: { depth: 0, capacity: 4 } },
    { name: "idle", queue: { depth: 0, capacity: 4 } },
  ];
  const s = stats.snapshot({ ...extra, served });
  assert.equal(s.latency_ms.count, 3, "the sums are every model's");
  assert.deepEqual(s.models, [
    {
      name: "packaging",
      frames: { accepted: 1, scored: 1 },
      queue: { depth: 1, capacity: 4 },
      latency_ms: { count: 1, p50: 9, p99: 9, max: 9 },
      inference_ms: { count: 1, p50: 0.5, p99: 0.5 },
    },
    {
      name: "boiler",
      frames: { accepted: 3, scored: 2 },
      queue: { depth: 0, capacity: 4 },
      latency_ms: { count: 2, p50: 2, p99: 4, max: 4 },
      inference_ms: { count: 1, p50: 1.5, p99: 1.5 },
    },
    {
      name: "idle",
      frames: { accepted: 0, scored: 0 },
      queue: { depth: 0, capacity: 4 },
      latency_ms: { count: 0, p50: 0, p99: 0, max: 0 },
      inference_ms: { count: 0, p50: 0, p99: 0 },
    },
  ]);
  // A role without queues of its own (a scale-out worker): no accepted count, no queue.
  assert.deepEqual(stats.snapshot({ ...extra, served: [{ name: "boiler" }] }).models?.[0].frames, {
    scored: 2,
  });
  assert.equal(stats.snapshot(extra).models, undefined, "none listed when none is served");
  stats.reset();
  assert.deepEqual(stats.snapshot({ ...extra, served }).models?.[1].frames, {
    accepted: 0,
    scored: 0,
  });
});
