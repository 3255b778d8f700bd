// The retraining's lookback (RETRAIN_MAX_FRAMES): only the newest chunks are read (by chunk number and frame time, never file time), across writer folders, and the newest frames kept.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { encodeFrame, encodeHeader } from "./chunk_format.ts";
import { readHistory } from "./history_reader.ts";
import { featuresSha256 } from "./history_recorder.ts";

const NAMES = ["a", "b"];
const T0 = 1_700_000_000_000;

/** A chunk of `count` frames of `stream` from `seq`, written `ageS` seconds ago. */
async function chunk(
  dir: string,
  n: number,
  stream: string,
  seq: number,
  count: number,
  ageS: number,
  names = NAMES,
) {
  await mkdir(dir, { recursive: true });
  const parts = [
    encodeHeader({
      model: "m",
      n_features: 2,
      features_sha256: featuresSha256(names),
      created_at: new Date(T0).toISOString(),
    }),
  ];
  for (let i = 0; i < count; i++) {
    const s = seq + i;
    parts.push(
      encodeFrame({
        streamId: stream,
        timestamp: T0 + s * 1000,
        session: 1,
        seq: s,
        incident: "",
        values: Float32Array.of(s, -s),
      }),
    );
  }
  const path = join(dir, `${String(n).padStart(12, "0")}.chunk`);
  await writeFile(path, Buffer.concat(parts));
  const at = Date.now() / 1000 - ageS;
  await utimes(path, at, at);
}

test("readHistory with maxFrames reads only the newest chunks of every writer and keeps the newest frames", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  try {
    // Stream s1 in the model's own folder (3 chunks), then on worker-b (2 chunks), newest last.
    await chunk(dir, 1, "s1", 0, 10, 50);
    await chunk(dir, 2, "s1", 10, 10, 40);
    await chunk(dir, 3, "s1", 20, 10, 30);
    await chunk(join(dir, "worker-b"), 1, "s1", 30, 10, 20);
    await chunk(join(dir, "worker-b"), 2, "s1", 40, 10, 10);
    const all = await readHistory(dir, { model: "m", featureNames: NAMES });
    assert.equal(all.frames.length, 50);
    assert.equal(all.lookback, undefined);

    const last = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 25 });
    // The three newest chunks hold 30 frames: the two oldest chunks are not read, 5 frames dropped.
    assert.deepEqual(last.lookback, { maxFrames: 25, chunksNotRead: 2, framesDropped: 5 });
    assert.equal(last.chunks, 3);
    assert.deepEqual(
      last.frames.map((f) => f.seq),
      Array.from({ length: 25 }, (_, i) => 25 + i),
      "the newest 25, in recorded order",
    );
    // Enough history: everything read.
    const wide = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 1000 });
    assert.deepEqual(wide.lookback, { maxFrames: 1000, chunksNotRead: 0, framesDropped: 0 });
    assert.equal(wide.frames.length, 50);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("readHistory's lookback counts only the wanted features' frames", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  try {
    await chunk(dir, 1, "s1", 0, 10, 30);
    await chunk(dir, 2, "s1", 10, 10, 20);
    // The newest chunk is of other features (an earlier model): it does not fill the lookback.
    await chunk(dir, 3, "s1", 20, 10, 10, ["x", "y"]);
    const mine = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 15 });
    assert.deepEqual(mine.lookback, { maxFrames: 15, chunksNotRead: 0, framesDropped: 5 });
    assert.equal(mine.otherFeatures, 1);
    assert.deepEqual(
      mine.frames.map((f) => f.seq),
      Array.from({ length: 15 }, (_, i) => 5 + i),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("readHistory's lookback follows a writer's chunk numbers, not file times, after the clock steps back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  try {
    await chunk(dir, 1, "s1", 0, 10, 40);
    await chunk(dir, 2, "s1", 10, 10, 30);
    // Written after an NTP step back of an hour: the newest chunks have the oldest mtimes.
    await chunk(dir, 3, "s1", 20, 10, 3600 + 20);
    await chunk(dir, 4, "s1", 30, 10, 3600 + 10);
    const last = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 15 });
    assert.deepEqual(last.lookback, { maxFrames: 15, chunksNotRead: 2, framesDropped: 5 });
    assert.deepEqual(
      last.frames.map((f) => f.seq),
      Array.from({ length: 15 }, (_, i) => 25 + i),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("readHistory's lookback merges writers by their chunks' newest frames, whatever their file times", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  try {
    // Two workers took turns at the stream; worker-a's folder was restored from a backup later
    // (newer mtimes on older frames).
    await chunk(join(dir, "worker-a"), 1, "s1", 0, 10, 5);
    await chunk(join(dir, "worker-a"), 2, "s1", 20, 10, 5);
    await chunk(join(dir, "worker-b"), 1, "s1", 10, 10, 50);
    await chunk(join(dir, "worker-b"), 2, "s1", 30, 10, 50);
    const last = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 25 });
    // The three newest by their frames (b/2, a/2, b/1) hold 30: a/1 is not read, 5 dropped.
    assert.deepEqual(last.lookback, { maxFrames: 25, chunksNotRead: 1, framesDropped: 5 });
    assert.deepEqual(
      last.frames.map((f) => f.seq).sort((a, b) => a - b),
      Array.from({ length: 25 }, (_, i) => 15 + i),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
