// Scale-out workers' training history: frames taken from the batch being scored, one folder per worker in a shared HISTORY_DIR, read back as one history.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { type ScoredBatch, sliceBatch } from "../batch/window_scorer.ts";
import { AlertPathIncidents } from "./_test/alert_path_incidents.ts";
import { modelOf, reading } from "./_test/scored_rows.ts";
import { BatchFrames } from "./batch_frames.ts";
import { historyRecordersFor, writerFolder } from "./from_config.ts";
import { frameUse, readHistory } from "./history_reader.ts";

const T0 = 1_700_000_000_000;
const model = modelOf(4);
const at = (seq: number) => T0 + seq * 1000;

interface Row {
  stream: string;
  seq: number;
  flagged?: number[];
}

/** A scored batch of `rows` as a worker's scorer lays it out, with each row's frame noted in `frames`. */
function scoredBatch(rows: Row[], frames: BatchFrames): ScoredBatch {
  const flagged: number[] = [];
  const flaggedFrom = new Uint32Array(rows.length + 1);
  rows.forEach((row, r) => {
    frames.set(
      r,
      Float32Array.from({ length: model.n_features }, (_, f) => reading(row.seq, f)),
    );
    flagged.push(...(row.flagged ?? []));
    flaggedFrom[r + 1] = flagged.length;
  });
  return {
    size: rows.length,
    nFeatures: model.n_features,
    scores: new Float32Array(rows.length * model.n_features),
    severity: undefined,
    statistic: undefined,
    flagged: Int32Array.from(flagged),
    flaggedFrom,
    evidenceFrom: new Uint32Array(rows.length + 1),
    windows: new Float32Array(0),
    levels: new Float32Array(0),
    streamIds: rows.map((r) => r.stream),
    timestamps: Float64Array.from(rows, (r) => at(r.seq)),
    receivedAt: new Float64Array(rows.length),
    spans: rows.map(() => undefined),
    inferenceMs: 0,
    completedAt: 0,
  };
}

const seqs = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test("two workers' recorders share one HISTORY_DIR, each in its folder, and read back as one history", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-writers-"));
  const config = parseConfig(engineConfigSchema, {
    HISTORY_DIR: dir,
    HISTORY_EVERY_N: "1",
    HISTORY_RUN_FRAMES: "120",
  });
  const a = historyRecordersFor(config, { writer: "a" });
  const b = historyRecordersFor(config, { writer: "b" });
  assert.ok(a && b);
  const framesA = new BatchFrames();
  const framesB = new BatchFrames();
  // Each worker's alert path: its incident state says which incident each window is part of.
  const pathA = new AlertPathIncidents(model);
  const pathB = new AlertPathIncidents(model);
  const lane = (frames: BatchFrames, view: ScoredBatch, from: number) => ({
    model: { metadata: model },
    history: frames.over(view, from),
  });
  try {
    // Worker a scores stream "s" (frames 0..59) and stream "x" (0..39) in batches of 8 and 8 rows,
    // two partitions sharing each batch: the recorder gets each partition's rows as a view.
    for (let k = 0; k < 60; k += 8) {
      const sRows = seqs(k, Math.min(k + 8, 60)).map((seq) => ({ stream: "s", seq }));
      const xRows = k < 40 ? seqs(k, k + 8).map((seq) => ({ stream: "x", seq })) : [];
      const batch = scoredBatch([...xRows, ...sRows], framesA);
      const split = xRows.length;
      if (split) {
        const xView = sliceBatch(batch, 0, split);
        a.scored(xView, lane(framesA, xView, 0), pathA.of(xView));
      }
      const sView = sliceBatch(batch, split, batch.size);
      a.scored(sView, lane(framesA, sView, split), pathA.of(sView));
      framesA.clear();
    }
    // "s"'s partition goes to worker b, which scores again from frame 50 (a had not committed
    // 50..59); a forgets "s": its held frames 56..59 are never written by a.
    a.forget(model.name, ["s"]);
    for (let k = 50; k < 120; k += 10) {
      // An incident on "s" around frame 90: flagged windows 88..90, three quiet ones resolve it.
      const rows = seqs(k, k + 10).map((seq) => ({
        stream: "s",
        seq,
        flagged: seq >= 88 && seq <= 90 ? [1] : [],
      }));
      const batch = scoredBatch(rows, framesB);
      b.scored(batch, lane(framesB, batch, 0), pathB.of(batch));
      framesB.clear();
    }
    // b stops before committing 110..119; "s" comes back to a, which scores from 110: a run of
    // its own, not one glued to a's frames before the hand-over.
    for (let k = 110; k < 140; k += 10) {
      const batch = scoredBatch(
        seqs(k, k + 10).map((seq) => ({ stream: "s", seq })),
        framesA,
      );
      a.scored(batch, lane(framesA, batch, 0), pathA.of(batch));
      framesA.clear();
    }
    await Promise.all([a.close(), b.close()]);

    const model_ = join(dir, model.name);
    assert.deepEqual((await readdir(model_)).sort(), [writerFolder("a"), writerFolder("b")]);
    for (const w of ["a", "b"]) {
      const files = await readdir(join(model_, writerFolder(w)));
      assert.ok(files.includes("index.json"), `${w} has its own index`);
      assert.ok(
        files.some((f) => f.endsWith(".chunk")),
        `${w} has its own chunks`,
      );
    }

    const read = await readHistory(model_, {
      model: model.name,
      featureNames: model.feature_names,
    });
    assert.deepEqual(read.warnings, []);
    const of = (stream: string) => read.frames.filter((f) => f.streamId === stream);
    // "x": a's frames, the last window_size - 1 held back at the stop.
    assert.deepEqual(
      of("x").map((f) => f.seq),
      seqs(0, 36),
    );
    // "s": every frame once. a's folder is read first: its 0..55 and 110..135 (the last
    // window_size - 1 held at the stop); b's from 56 to 109 (its 50..55 and 110..115 were a's).
    const s = of("s");
    assert.deepEqual(
      s.map((f) => f.timestamp).sort((x, y) => x - y),
      seqs(0, 136).map(at),
    );
    for (const f of s) {
      const seq = (f.timestamp - T0) / 1000;
      assert.deepEqual(
        Array.from(f.values),
        Array.from({ length: model.n_features }, (_, i) => reading(seq, i)),
      );
    }
    // Runs as retraining splits them (same session, consecutive seq) hold consecutive frames.
    const runs: (typeof s)[] = [];
    for (const f of s) {
      const run = runs.at(-1);
      const prev = run?.at(-1);
      if (run && prev && prev.session === f.session && prev.seq + 1 === f.seq) run.push(f);
      else runs.push([f]);
    }
    assert.deepEqual(
      runs.map((r) => [(r[0].timestamp - T0) / 1000, (r.at(-1)!.timestamp - T0) / 1000]),
      [
        [0, 55],
        [110, 135],
        [56, 109],
      ],
    );
    for (const r of runs) {
      for (const [i, f] of r.entries()) assert.equal(f.timestamp, r[0].timestamp + i * 1000);
    }
    assert.deepEqual(
      runs.map((r) => r.map((f) => f.seq)),
      [seqs(0, 56), seqs(0, 26), seqs(6, 60)],
    );
    // b's incident is in the merged index and its frames are left out until judged.
    const incidents = Object.entries(read.index.incidents);
    assert.equal(incidents.length, 1);
    assert.equal(incidents[0][1].stream, "s");
    const tagged = s.filter((f) => f.incident === incidents[0][0]);
    assert.ok(tagged.length >= 3, `${tagged.length} tagged frames`);
    assert.ok(tagged.every((f) => !frameUse(f, read.index).use));
  } finally {
    await Promise.allSettled([a.close(), b.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});

test("batchFrames finds each row's frame in a partition's slice, and nothing for a frame not in it", () => {
  const frames = new BatchFrames();
  const rows = [
    { stream: "x", seq: 1 },
    { stream: "s", seq: 7 },
    { stream: "s", seq: 8 },
  ];
  const batch = scoredBatch(rows, frames);
  const view = sliceBatch(batch, 1, 3);
  const source = frames.over(view, 1);
  // Asked out of order too: the search wraps round.
  assert.equal(source.span("s", at(8), at(8))?.frame(0)[2], reading(8, 2));
  assert.equal(source.span("s", at(7), at(7))?.frame(0)[0], reading(7, 0));
  assert.equal(source.span("s", at(7), at(7))?.time(0), at(7));
  assert.equal(source.span("x", at(1), at(1)), undefined, "another partition's row");
  assert.equal(source.span("s", at(7), at(8)), undefined, "one frame at a time");
  frames.clear();
  assert.equal(frames.span("s", at(8), at(8)), undefined, "nothing once cleared");
});
