import assert from "node:assert/strict";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { LogCursor, laneLatencies } from "./lane_latency.ts";

const batch = (model: string, frames: [string, number][], inference_ms = 1) =>
  JSON.stringify({
    time: "2026-01-01T00:00:00.000Z",
    level: "debug",
    msg: "batch scored",
    service: "engine",
    model,
    batch_size: frames.length,
    inference_ms,
    frames: frames.map(([stream_id, latency_ms]) => ({ stream_id, timestamp: "", latency_ms })),
  });

test("laneLatencies groups the batch lines by model and skips other lines", () => {
  const small: [string, number][] = Array.from({ length: 100 }, (_, i) => [`s-${i % 2}`, i + 1]);
  const text = [
    batch(
      "big",
      [
        ["b-0", 40],
        ["b-1", 60],
      ],
      30,
    ),
    JSON.stringify({ level: "info", msg: "anomalous windows", model: "big" }),
    batch("small", small.slice(0, 50), 2),
    batch("small", small.slice(50), 5),
    "",
  ].join("\n");
  const lanes = laneLatencies(text);
  assert.deepEqual(Object.keys(lanes).sort(), ["big", "small"]);
  assert.deepEqual(lanes.big, {
    scored: 2,
    streams: { "b-0": 1, "b-1": 1 },
    p50: 40,
    p90: 60,
    p99: 60,
    max: 60,
    batches: 1,
    inference_ms: { p50: 30, p99: 30 },
  });
  assert.equal(lanes.small.scored, 100);
  assert.deepEqual(lanes.small.streams, { "s-0": 50, "s-1": 50 });
  assert.equal(lanes.small.p50, 50);
  assert.equal(lanes.small.p99, 99);
  assert.equal(lanes.small.max, 100);
  assert.equal(lanes.small.batches, 2);
  assert.deepEqual(lanes.small.inference_ms, { p50: 2, p99: 5 });
});

test("LogCursor gives each complete line once and keeps a partial one for later", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lane-latency-"));
  const path = join(dir, "engine.log");
  try {
    await appendFile(path, "one\ntwo\nthr");
    const cursor = new LogCursor(path);
    assert.equal(await cursor.next(), "one\ntwo\n");
    assert.equal(await cursor.next(), "");
    await appendFile(path, "ee\n");
    assert.equal(await cursor.next(), "three\n");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
