// The training history's byte bound keeps the newest frames by their own time: a backfill of older frames gives way, not the live ones.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { HistoryStore } from "../evidence/history_store.ts";
import { feed, modelOf, quiet, type Row } from "./_test/scored_rows.ts";
import { encodeFrame, encodeHeader } from "./chunk_format.ts";
import { ChunkWriter } from "./chunk_writer.ts";
import { readHistory } from "./history_reader.ts";
import { HistoryRecorder } from "./history_recorder.ts";

const MiB = 2 ** 20;
/** The live frames' time; the backfill's frames are a week older. */
const LIVE = 1_700_000_000_000;
const WEEK_AGO = LIVE - 7 * 24 * 3600 * 1000;
/** 2,500 sensors: a recorded frame takes about 10 kB, a 64 KiB chunk holds 7. */
const model = modelOf(2500);
/** Live frames (about 600 kB) and backfilled ones (about 1.5 MB): together past the 1 MiB bound. */
const LIVE_FRAMES = 60;
const BACKFILL_FRAMES = 150;

async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "history-bound-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A recorder of every window of `model` in `dir`, bounded to 1 MiB. */
const recorderIn = (dir: string) =>
  new HistoryRecorder({ dir, model, maxBytes: MiB, everyN: 1, runFrames: 10 });

/**
 * Records `rows` of one stream (timed from `t0`) through its own frame store, flushing every few
 * windows as the engine's timer does.
 */
async function record(recorder: HistoryRecorder, rows: Row[], t0: number): Promise<void> {
  const store = new HistoryStore({ frames: 32, features: model.n_features, maxBytes: 2 ** 31 });
  for (let i = 0; i < rows.length; i += 6) {
    feed(recorder, model, rows.slice(i, i + 6), { t0, batchSize: 6, store });
    await recorder.flush();
  }
}

/** The bytes of `dir`'s chunks. */
async function chunkBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dir)) {
    if (name.endsWith(".chunk")) bytes += (await stat(join(dir, name))).size;
  }
  return bytes;
}

/**
 * What is read back after a live stream and then a backfill of another's week-old frames: every
 * live frame written (all but the last `window_size - 1`, still held at close) must be there.
 */
async function assertLiveKept(dir: string): Promise<void> {
  const read = await readHistory(dir, { model: "m", featureNames: model.feature_names });
  const live = read.frames.filter((f) => f.streamId === "live").map((f) => f.seq);
  const backfill = read.frames.filter((f) => f.streamId === "backfill");
  assert.deepEqual(
    live,
    Array.from({ length: LIVE_FRAMES - (model.window_size - 1) }, (_, i) => i),
    "every live frame kept",
  );
  // The bound did drop chunks: of the backfill, only the newest written are left.
  assert.ok(read.index.dropped_chunks > 0);
  assert.ok(backfill.length > 0 && backfill.length < BACKFILL_FRAMES, `${backfill.length}`);
  assert.ok((await chunkBytes(dir)) <= MiB + 70_000, "within the bound plus one write");
}

test("history recorder past its bound drops a backfill of older frames, not the live frames recorded before it", async () => {
  await inTempDir(async (dir) => {
    const recorder = recorderIn(dir);
    await record(recorder, quiet("live", 0, LIVE_FRAMES), LIVE);
    await record(recorder, quiet("backfill", 0, BACKFILL_FRAMES), WEEK_AGO);
    await recorder.close();
    await assertLiveKept(dir);
  });
});

test("history recorder restarted on a live history drops a backfill of older frames past its bound, not the chunks it found on disk", async () => {
  await inTempDir(async (dir) => {
    const before = recorderIn(dir);
    await record(before, quiet("live", 0, LIVE_FRAMES), LIVE);
    await before.close();
    const after = recorderIn(dir);
    await record(after, quiet("backfill", 0, BACKFILL_FRAMES), WEEK_AGO);
    await after.close();
    await assertLiveKept(dir);
  });
});

test("chunkWriter drops a chunk found on disk whose times cannot be read before any other", async () => {
  await inTempDir(async (dir) => {
    const header = () =>
      encodeHeader({ model: "m", n_features: 2500, features_sha256: "x", created_at: "" });
    const values = new Float32Array(2500);
    const frameAt = (seq: number) =>
      encodeFrame({ streamId: "a", timestamp: LIVE + seq, session: 1, seq, incident: "", values });
    // 1 MiB in 64 KiB chunks (7 frames each): 10 chunks of live frames.
    const first = new ChunkWriter({ dir, maxBytes: MiB, header });
    for (let seq = 0; seq < 70; seq++) first.append(frameAt(seq), LIVE + seq);
    await first.close();
    const written = (await readdir(dir)).sort();
    assert.equal(written.length, 10);
    // Then a chunk whose frames cannot be read (a copy cut short, a bad disk block), numbered last.
    const unreadable = "000000000010.chunk";
    await writeFile(join(dir, unreadable), new Uint8Array(60_000).fill(7));
    const dropped: string[] = [];
    const second = new ChunkWriter({
      dir,
      maxBytes: MiB,
      header,
      onDrop: (files) => dropped.push(...files),
    });
    // Newer frames, until the bound takes its first chunk.
    let seq = 70;
    while (dropped.length === 0) {
      second.append(frameAt(seq), LIVE + seq);
      seq++;
      await second.flush();
    }
    await second.close();
    assert.deepEqual(dropped, [unreadable]);
    assert.ok((await readdir(dir)).includes(written[0]), "the oldest written stays");
  });
});
