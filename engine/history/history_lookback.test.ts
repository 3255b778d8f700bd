// The retraining's lookback (RETRAIN_MAX_FRAMES): only the chunks holding the newest frames are read (by frame time, never chunk number or file time), across writer folders, and the newest frames kept.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { feed, modelOf, quiet } from "./_test/scored_rows.ts";
import { encodeFrame, encodeHeader } from "./chunk_format.ts";
import { readHistory } from "./history_reader.ts";
import { featuresSha256, HistoryRecorder } from "./history_recorder.ts";

const NAMES = ["a", "b"];
const T0 = 1_700_000_000_000;

/** Chunk `n` of `dir` holding `frames` (each at `T0 + seq` s), written `ageS` seconds ago. */
async function chunkOf(
  dir: string,
  n: number,
  frames: { stream: string; seq: number }[],
  ageS = 0,
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
  for (const { stream, seq } of frames) {
    parts.push(
      encodeFrame({
        streamId: stream,
        timestamp: T0 + seq * 1000,
        session: 1,
        seq,
        incident: "",
        values: Float32Array.of(seq, -seq),
      }),
    );
  }
  const path = join(dir, `${String(n).padStart(12, "0")}.chunk`);
  await writeFile(path, Buffer.concat(parts));
  const at = Date.now() / 1000 - ageS;
  await utimes(path, at, at);
}

/** `count` frames of `stream` from `seq`. */
const run = (stream: string, seq: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ stream, seq: seq + i }));

/** A chunk of `count` frames of `stream` from `seq`, written `ageS` seconds ago. */
const chunk = (
  dir: string,
  n: number,
  stream: string,
  seq: number,
  count: number,
  ageS: number,
  names = NAMES,
) => chunkOf(dir, n, run(stream, seq, count), ageS, names);

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

test("readHistory's lookback follows frame times, not file times, after the clock steps back", async () => {
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

test("readHistory's lookback gives the newest frames by frame time after a backfill of older ones was recorded", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  // 8 KiB frames in 128 KiB chunks (a 2 MiB bound): about 16 frames a chunk, nothing evicted.
  const model = modelOf(2048);
  const recorder = new HistoryRecorder({
    dir,
    model,
    maxBytes: 2 * 2 ** 20,
    everyN: 1,
    runFrames: 10,
  });
  try {
    const live = Date.UTC(2026, 11, 7);
    // Live frames first, then a 3-day-old backfill sent at full speed: later chunk numbers, older frames.
    feed(recorder, model, quiet("live", 0, 60), { t0: live });
    await recorder.flush();
    feed(recorder, model, quiet("backfill", 0, 60), { t0: live - 3 * 86_400_000 });
    await recorder.close();

    const all = await readHistory(dir, { model: "m", featureNames: model.feature_names });
    assert.ok(all.chunks >= 6, `several chunks written (${all.chunks})`);
    const newest = all.frames
      .map((f) => f.timestamp)
      .sort((a, b) => b - a)
      .slice(0, 50);
    assert.ok(newest.at(-1)! >= live, "the 50 newest frames are all live ones");

    const last = await readHistory(dir, {
      model: "m",
      featureNames: model.feature_names,
      maxFrames: 50,
    });
    assert.deepEqual(
      last.frames.map((f) => f.timestamp).sort((a, b) => b - a),
      newest,
      "the lookback holds the 50 newest frames by time",
    );
    assert.ok(
      last.frames.every((f) => f.streamId === "live"),
      "no backfilled frame in the lookback",
    );
    // The backfill's chunks hold nothing as new: they are not read.
    assert.ok(last.lookback!.chunksNotRead >= 3, JSON.stringify(last.lookback));
    assert.equal(last.chunks + last.lookback!.chunksNotRead, all.chunks);
  } finally {
    await recorder.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("readHistory's lookback reads an older-numbered chunk whose frames are newer than most of a newer chunk's", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  try {
    // Chunk 2 (written last) holds one new frame and 49 old ones, as a flush of held frames of
    // several streams does: its newest frame alone does not make the rest new.
    await chunkOf(dir, 1, run("s2", 50, 50));
    await chunkOf(dir, 2, [...run("s1", 0, 49), { stream: "s1", seq: 100 }]);
    const last = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 50 });
    assert.deepEqual(
      last.frames.map((f) => f.seq).sort((a, b) => b - a),
      [100, ...Array.from({ length: 49 }, (_, i) => 99 - i)],
    );
    assert.deepEqual(last.lookback, { maxFrames: 50, chunksNotRead: 0, framesDropped: 50 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("readHistory's lookback counts a frame two writers recorded once", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  try {
    // A partition taken over before its owner committed: worker-b scored 10..19 again.
    await chunk(join(dir, "worker-a"), 1, "s1", 0, 10, 0);
    await chunk(join(dir, "worker-a"), 2, "s1", 10, 10, 0);
    await chunk(join(dir, "worker-b"), 1, "s1", 10, 10, 0);
    const last = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 15 });
    assert.deepEqual(
      last.frames.map((f) => f.seq).sort((a, b) => a - b),
      Array.from({ length: 15 }, (_, i) => 5 + i),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("readHistory's lookback skips a chunk's torn or corrupt records with a warning and reads the rest", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-lookback-"));
  try {
    await chunk(dir, 1, "s1", 0, 10, 0);
    await chunk(dir, 2, "s1", 10, 10, 0);
    // Chunk 2's last frame corrupt (its checksum no longer holds), then torn as a crash leaves
    // a record (one stretch skipped); chunk 3 is garbage from end to end.
    const path = join(dir, "000000000002.chunk");
    const bytes = await readFile(path);
    bytes[bytes.length - 20] ^= 0xff;
    await writeFile(path, Buffer.concat([bytes, bytes.subarray(0, 30)]));
    await writeFile(join(dir, "000000000003.chunk"), Buffer.alloc(4096, 7));
    const last = await readHistory(dir, { model: "m", featureNames: NAMES, maxFrames: 12 });
    assert.deepEqual(
      last.frames.map((f) => f.seq),
      Array.from({ length: 12 }, (_, i) => 7 + i),
      "the newest 12 of the intact frames",
    );
    assert.equal(last.skippedRecords, 2);
    assert.equal(last.warnings.length, 2, last.warnings.join("\n"));
    assert.deepEqual(last.lookback, { maxFrames: 12, chunksNotRead: 0, framesDropped: 7 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
