// Chunk records round-trip; a torn or corrupt record is skipped and counted, the rest read; a kill -9 mid-write loses at most what was being written.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { waitFor } from "../_test/wait_for.ts";
import { crashTestRecorder, feed, modelOf, quiet, reading } from "./_test/scored_rows.ts";
import {
  chunkTimes,
  decodeChunk,
  encodeFrame,
  encodeHeader,
  type HistoryFrame,
  RECORD_HEADER_BYTES,
} from "./chunk_format.ts";
import { readHistory } from "./history_reader.ts";
import { featuresSha256 } from "./history_recorder.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const frameOf = (seq: number, n = 5, incident = ""): HistoryFrame => ({
  streamId: "line-1/ü",
  timestamp: 1_700_000_000_000 + seq * 1000.5,
  session: 0xdeadbeef,
  seq,
  incident,
  values: Float32Array.from({ length: n }, (_, f) => reading(seq, f) + 0.25),
});

const header = {
  model: "m",
  n_features: 5,
  features_sha256: "ab",
  created_at: "2026-01-01T00:00:00.000Z",
};

function chunkOf(frames: HistoryFrame[], head = header): Uint8Array {
  const parts = [encodeHeader(head), ...frames.map(encodeFrame)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("chunk format", () => {
  test("chunkTimes gives the times and streams of the frames decodeChunk gives, corrupt records skipped alike", () => {
    const frames = [frameOf(0), frameOf(1, 3, "incident"), frameOf(2, 0), frameOf(3)];
    const bytes = chunkOf(frames);
    // Frame 1's readings corrupted, and the chunk torn in its last record.
    const second = chunkOf(frames.slice(0, 1)).length;
    bytes[second + RECORD_HEADER_BYTES + 40] ^= 0xff;
    const torn = bytes.subarray(0, bytes.length - 3);
    const decoded = decodeChunk(torn);
    const times = chunkTimes(torn);
    assert.deepEqual(times.header, header);
    assert.deepEqual(
      times.timestamps,
      decoded.frames.map((f) => f.timestamp),
    );
    assert.deepEqual(
      times.timestamps.map((_, i) => times.streamId(i)),
      decoded.frames.map((f) => f.streamId),
    );
    assert.deepEqual(
      decoded.frames.map((f) => f.seq),
      [0, 2],
    );
  });
  test("frames and the header round-trip", () => {
    const frames = [
      frameOf(0),
      frameOf(1, 5, "5a2b3c4d-0000-5000-8000-000000000000"),
      frameOf(2, 0),
    ];
    const chunk = decodeChunk(chunkOf(frames));
    assert.deepEqual(chunk.header, header);
    assert.equal(chunk.skipped, 0);
    assert.deepEqual(chunk.frames, frames);
  });

  test("a torn last record and a corrupt one in the middle are skipped and counted; the rest is read", () => {
    const frames = Array.from({ length: 6 }, (_, i) => frameOf(i));
    const bytes = chunkOf(frames);
    const sizes = frames.map((f) => encodeFrame(f).length);
    const start = encodeHeader(header).length;
    // Flip a reading of frame 2 (its checksum no longer holds), and cut frame 5 in half.
    const frame2 = start + sizes[0] + sizes[1];
    bytes[frame2 + sizes[2] - 3] ^= 0xff;
    const cut = bytes.subarray(0, bytes.length - Math.floor(sizes[5] / 2));
    const chunk = decodeChunk(cut);
    assert.deepEqual(
      chunk.frames.map((f) => f.seq),
      [0, 1, 3, 4],
    );
    assert.equal(chunk.skipped, 2);
    assert.equal(chunk.skippedBytes, sizes[2] + Math.ceil(sizes[5] / 2));
  });

  test("readHistory warns about a damaged chunk and reads every other one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "history-read-"));
    try {
      await writeFile(join(dir, "000000000000.chunk"), chunkOf([frameOf(0), frameOf(1)]));
      await writeFile(join(dir, "000000000001.chunk"), chunkOf([frameOf(2), frameOf(3)]));
      await truncate(
        join(dir, "000000000001.chunk"),
        (await readFile(join(dir, "000000000001.chunk"))).length - 7,
      );
      await writeFile(join(dir, "000000000002.chunk"), new Uint8Array([1, 2, 3]));
      const read = await readHistory(dir, { model: "m" });
      assert.deepEqual(
        read.frames.map((f) => f.seq),
        [0, 1, 2],
      );
      assert.equal(read.skippedRecords, 2);
      assert.equal(read.warnings.length, 2);
      assert.match(read.warnings[0], /000000000001\.chunk: 1 torn or corrupt record/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("readHistory reports a chunk whose header is unreadable as such, never as other features", async () => {
    const dir = await mkdtemp(join(tmpdir(), "history-header-"));
    const names = ["s0", "s1", "s2", "s3", "s4"];
    const mine = { ...header, features_sha256: featuresSha256(names) };
    const other = { ...header, features_sha256: featuresSha256(names.map((n) => `x_${n}`)) };
    try {
      const damaged = chunkOf([frameOf(0), frameOf(1), frameOf(2)], mine);
      damaged[RECORD_HEADER_BYTES + 5] ^= 0xff; // one byte of the header's JSON
      await writeFile(join(dir, "000000000000.chunk"), damaged);
      await writeFile(join(dir, "000000000001.chunk"), chunkOf([frameOf(3)], mine));
      await writeFile(join(dir, "000000000002.chunk"), chunkOf([frameOf(4)], other));
      const read = await readHistory(dir, { model: "m", featureNames: names });
      assert.deepEqual(
        read.frames.map((f) => f.seq),
        [3],
      );
      assert.equal(read.otherFeatures, 1, "only the chunk whose header names other sensors");
      assert.deepEqual(read.unreadableHeaders, { chunks: 1, framesNotRead: 3 });
      assert.equal(read.skippedRecords, 1);
      assert.deepEqual(read.warnings, [
        `000000000000.chunk: 1 torn or corrupt record(s) skipped (${encodeHeader(mine).length} bytes); header unreadable: its 3 intact frame(s) not read (which sensors they hold cannot be checked)`,
      ]);
      // Asked for no features, every intact frame is read; the header is still reported.
      const any = await readHistory(dir, { model: "m" });
      assert.deepEqual(
        any.frames.map((f) => f.seq),
        [0, 1, 2, 3, 4],
      );
      assert.deepEqual(any.unreadableHeaders, { chunks: 1, framesNotRead: 0 });
      assert.match(any.warnings[0], /^000000000000\.chunk: .*; header unreadable$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a recorder killed with SIGKILL mid-write leaves every written frame readable, and a new one goes on", async () => {
    const dir = await mkdtemp(join(tmpdir(), "history-crash-"));
    // 100,000 sensors: 400 KB a frame, 3.2 MB a flush, so the kill lands in a write.
    const features = 100_000;
    try {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", "engine/history/_test/record_forever.ts", dir, String(features)],
        { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
      );
      let written = 0;
      child.stdout.on("data", (chunk: Buffer) => {
        written = Number(chunk.toString().trim().split("\n").at(-1));
      });
      const exited = new Promise((resolve) => child.on("exit", resolve));
      await waitFor(() => written >= 64, "the recorder to write 64 frames", 60_000);
      child.kill("SIGKILL");
      assert.equal(await exited, null);

      const model = modelOf(features);
      const read = await readHistory(dir, { model: "m", featureNames: model.feature_names });
      const seqs = read.frames.map((f) => f.seq);
      assert.ok(seqs.length >= 56, `${seqs.length} frames read`);
      assert.deepEqual(
        seqs,
        [...seqs.keys()],
        "the frames written, in order, none missing before the tear",
      );
      for (const f of read.frames) {
        assert.equal(f.values[0], reading(f.seq, 0));
        assert.equal(f.values[features - 1], Math.fround(reading(f.seq, features - 1)));
      }
      // Only the records of the last write can be torn.
      assert.ok(read.skippedRecords <= 1, `${read.skippedRecords} skipped`);

      const again = crashTestRecorder(dir, model);
      feed(again, model, quiet("b", 0, 10));
      await again.close();
      const after = await readHistory(dir, { model: "m", featureNames: model.feature_names });
      assert.equal(after.frames.length, seqs.length + 6);
      assert.deepEqual(
        after.frames.filter((f) => f.streamId === "b").map((f) => f.seq),
        [0, 1, 2, 3, 4, 5],
      );
      assert.ok((await readdir(dir)).filter((n) => n.endsWith(".chunk")).length >= 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a write the disk takes only part of fails its flush, and the next records start a fresh chunk instead of following a torn one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "chunk-short-"));
    try {
      // Files may not grow past 40,000 bytes in the child (RLIMIT_FSIZE, a disk filling up):
      // the second flush crosses it part-way.
      const script = `
        const { ChunkWriter } = await import(${JSON.stringify(new URL("./chunk_writer.ts", import.meta.url).pathname)});
        const { encodeFrame, encodeHeader } = await import(${JSON.stringify(new URL("./chunk_format.ts", import.meta.url).pathname)});
        const header = ${JSON.stringify(header)};
        const writer = new ChunkWriter({ dir: ${JSON.stringify(dir)}, maxBytes: 2 ** 30, header: () => encodeHeader(header) });
        const frame = (seq) => encodeFrame({ streamId: "s", timestamp: 1e12 + seq, session: 1, seq, incident: "", values: new Float32Array(1000) });
        const out = [];
        for (const seqs of [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11], [12]]) {
          for (const seq of seqs) writer.append(frame(seq));
          out.push(await writer.flush().then(() => "written", (e) => e.code));
        }
        await writer.close().catch(() => {});
        console.log(JSON.stringify(out));`;
      const child = spawnSync(
        "prlimit",
        ["--fsize=40000", process.execPath, "--import", "tsx", "--input-type=module", "-e", script],
        { encoding: "utf8" },
      );
      assert.equal(child.status, 0, child.stderr);
      assert.deepEqual(JSON.parse(child.stdout.trim()), ["written", "ENOSPC", "written"]);
      const seqs: number[] = [];
      for (const name of (await readdir(dir)).sort()) {
        for (const f of decodeChunk(await readFile(join(dir, name))).frames) seqs.push(f.seq);
      }
      // The records of the flush cut short may be partly there; the one after it always is.
      assert.ok(seqs.includes(12), `read ${seqs}`);
      assert.deepEqual(seqs.slice(0, 5), [0, 1, 2, 3, 4]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
