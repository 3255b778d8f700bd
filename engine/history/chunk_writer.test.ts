// The training history on a full disk: the oldest chunks give way, recording goes on, and a bound larger than the disk is said at start.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statfsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { HistoryStore } from "../evidence/history_store.ts";
import { feed, modelOf, quiet } from "./_test/scored_rows.ts";
import { chunkBytesIn, SmallDisk } from "./_test/small_disk.ts";
import { decodeChunk, encodeFrame, encodeHeader } from "./chunk_format.ts";
import { ChunkWriter, type DiskFull } from "./chunk_writer.ts";
import { historyRecordersFor } from "./from_config.ts";
import { readHistory } from "./history_reader.ts";
import { HistoryRecorder } from "./history_recorder.ts";

const T0 = 1_700_000_000_000;
const MiB = 2 ** 20;

async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "history-disk-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The seqs of the frames in `dir`'s chunks, ascending. */
function seqsIn(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".chunk"))
    .flatMap((name) => decodeChunk(new Uint8Array(readFileSync(join(dir, name)))).frames)
    .map((f) => f.seq)
    .sort((a, b) => a - b);
}

test("chunkWriter on a full disk deletes its oldest chunks for room, writes on within three quarters of what it held, and grows back once the disk has room", async () => {
  await inTempDir(async (dir) => {
    const fulls: DiskFull[] = [];
    const dropped: string[] = [];
    const disk = new SmallDisk(dir, MiB);
    // A 4 MiB bound (256 KiB chunks) on a disk of 1 MiB.
    const writer = new ChunkWriter({
      dir,
      maxBytes: 4 * MiB,
      header: () =>
        encodeHeader({ model: "m", n_features: 2500, features_sha256: "x", created_at: "" }),
      onFull: (full) => fulls.push(full),
      onDrop: (files) => dropped.push(...files),
      ...disk.fs,
    });
    const values = new Float32Array(2500);
    const failed: number[] = [];
    let seq = 0;
    for (let round = 0; round < 60; round++) {
      for (let i = 0; i < 4; i++) {
        writer.append(
          encodeFrame({
            streamId: "a",
            timestamp: T0,
            session: 1,
            seq: seq++,
            incident: "",
            values,
          }),
        );
      }
      await writer.flush().catch((error) => {
        assert.equal(error.code, "ENOSPC");
        failed.push(round);
      });
      // Within the lowered bound, plus the flush that takes it there, once the disk was full.
      if (fulls.length) assert.ok(chunkBytesIn(dir) <= fulls[0].bound + 4 * 10_100);
    }
    await writer.close();
    // The disk was full once; the flush that met it lost its records, every later one was written.
    assert.equal(failed.length, 1);
    assert.equal(fulls.length, 1);
    assert.ok(fulls[0].bound < 0.8 * MiB && fulls[0].bound > 0.7 * MiB, `${fulls[0].bound}`);
    assert.deepEqual(fulls[0].dropped, dropped.slice(0, fulls[0].dropped.length));
    assert.ok(fulls[0].dropped.length >= 1 && fulls[0].freed > 0);
    // What is on disk is the newest records without a gap: about the lowered bound's worth.
    const seqs = seqsIn(dir);
    assert.equal(seqs.at(-1), seq - 1);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => seq - seqs.length + i),
    );
    assert.ok(seqs.length * 10_100 > fulls[0].bound / 2, `${seqs.length} records`);
    // Something else frees space: the history grows back to HISTORY_MAX_BYTES, never past it.
    disk.capacity = 16 * MiB;
    for (let round = 0; round < 150; round++) {
      for (let i = 0; i < 4; i++) {
        writer.append(
          encodeFrame({
            streamId: "a",
            timestamp: T0,
            session: 1,
            seq: seq++,
            incident: "",
            values,
          }),
        );
      }
      await writer.flush();
    }
    await writer.close();
    const grown = chunkBytesIn(dir);
    assert.ok(grown > 3 * MiB && grown <= 4 * MiB + 4 * 10_100, `${grown} bytes`);
    assert.equal(fulls.length, 1);
  });
});

test("chunkWriter on a full disk deletes a backfill of older records for room before the live ones written earlier", async () => {
  await inTempDir(async (dir) => {
    const fulls: DiskFull[] = [];
    const disk = new SmallDisk(dir, MiB);
    // A 4 MiB bound (256 KiB chunks, 26 records each) on a disk of 1 MiB.
    const writer = new ChunkWriter({
      dir,
      maxBytes: 4 * MiB,
      header: () =>
        encodeHeader({ model: "m", n_features: 2500, features_sha256: "x", created_at: "" }),
      onFull: (full) => fulls.push(full),
      ...disk.fs,
    });
    const values = new Float32Array(2500);
    const append = (streamId: string, seq: number, timestamp: number) =>
      writer.append(
        encodeFrame({ streamId, timestamp, session: 1, seq, incident: "", values }),
        timestamp,
      );
    // Two chunks of live records, then a backfill of week-old ones until the disk is full.
    for (let seq = 0; seq < 52; seq++) append("live", seq, T0 + seq * 1000);
    await writer.flush();
    const weekAgo = T0 - 7 * 24 * 3600 * 1000;
    for (let seq = 0; fulls.length === 0; seq += 4) {
      for (let i = 0; i < 4; i++) append("backfill", seq + i, weekAgo + (seq + i) * 1000);
      await writer.flush().catch((error) => assert.equal(error.code, "ENOSPC"));
    }
    await writer.close();
    // The backfill's first chunk gave way (the one the write failed in stays), the live ones stayed.
    assert.deepEqual(fulls[0].dropped, ["000000000002.chunk"]);
    const live = readdirSync(dir)
      .filter((name) => name.endsWith(".chunk"))
      .flatMap((name) => decodeChunk(new Uint8Array(readFileSync(join(dir, name)))).frames)
      .filter((f) => f.streamId === "live")
      .map((f) => f.seq);
    assert.deepEqual(
      live,
      Array.from({ length: 52 }, (_, i) => i),
    );
  });
});

test("history recorder on a full disk records on after it, counts the deleted chunks and warns once a minute", async () => {
  await inTempDir(async (dir) => {
    const model = modelOf(2500);
    const warned: { message: string; fields: Record<string, unknown> }[] = [];
    const errors: string[] = [];
    const recorder = new HistoryRecorder({
      dir,
      model,
      maxBytes: 64 * MiB,
      everyN: 1,
      runFrames: 10,
      disk: new SmallDisk(dir, MiB).fs,
      now: () => 0,
      log: {
        warn: (message, fields = {}) => warned.push({ message, fields }),
        error: (message) => errors.push(message),
      },
    });
    const store = new HistoryStore({ frames: 32, features: 2500, maxBytes: 2 ** 31 });
    for (let round = 0; round < 80; round++) {
      feed(recorder, model, quiet("a", round * 8, 8), { t0: T0, batchSize: 8, store });
      await recorder.flush();
    }
    await recorder.close();
    const full = warned.filter((w) => w.message.startsWith("training history's disk is full"));
    assert.equal(full.length, 1);
    assert.equal(full[0].fields.history_max_bytes, 64 * MiB);
    assert.ok((full[0].fields.bound_bytes as number) < MiB);
    assert.ok((full[0].fields.chunks_dropped as number) >= 1);
    assert.deepEqual(errors, ["training history could not be written"]);
    assert.ok(warned.some((w) => w.message === "training history is written again"));
    // The newest frames are there (all but the last window_size - 1, held at close).
    const read = await readHistory(dir, { model: "m" });
    const seqs = read.frames.map((f) => f.seq);
    assert.equal(Math.max(...seqs), 80 * 8 - 5);
    assert.ok(read.index.dropped_chunks >= (full[0].fields.chunks_dropped as number));
  });
});

test("historyRecordersFor warns as a model is first recorded when models × HISTORY_MAX_BYTES is more than the disk has free", async () => {
  await inTempDir(async (dir) => {
    const { bavail, bsize } = statfsSync(dir);
    const free = bavail * bsize;
    // 1 PiB, the largest bound allowed: more than this disk has.
    assert.ok(free < 2 ** 50);
    const run = async (maxBytes: number) => {
      const warned: { message: string; fields: Record<string, unknown> }[] = [];
      const config = parseConfig(engineConfigSchema, {
        HISTORY_DIR: dir,
        HISTORY_MAX_BYTES: String(maxBytes),
        HISTORY_EVERY_N: "1",
        HISTORY_RUN_FRAMES: "120",
      });
      const recorders = historyRecordersFor(config, {
        log: { warn: (message, fields = {}) => warned.push({ message, fields }), error: () => {} },
      });
      assert.ok(recorders);
      const model = modelOf(4);
      const store = new HistoryStore({ frames: 32, features: 4, maxBytes: 2 ** 31 });
      const lane = { model: { metadata: model }, history: store };
      const viaConfig = {
        scored: (batch, _store, _model, incidents) => recorders.scored(batch, lane, incidents),
      } as Pick<HistoryRecorder, "scored"> as HistoryRecorder;
      feed(viaConfig, model, quiet("a", 0, 8), { t0: T0, store, incidents: "frame" });
      await recorders.close();
      return warned.filter((w) => w.message.startsWith("training history may fill its disk"));
    };
    const warned = await run(2 ** 50);
    assert.equal(warned.length, 1);
    assert.equal(warned[0].fields.need_bytes, 2 ** 50);
    assert.ok(Math.abs((warned[0].fields.free_bytes as number) - free) < 64 * MiB);
    assert.match(warned[0].message, new RegExp(`${2 ** 50} bytes`));
    assert.deepEqual(await run(MiB), []);
  });
});
