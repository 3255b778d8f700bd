// The training history's index.json: it names the incidents whose frames are on disk, and a large one is not rewritten for counts at every flush.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AlertPathIncidents } from "./_test/alert_path_incidents.ts";
import { feed, modelOf, quiet, type Row } from "./_test/scored_rows.ts";
import { emptyIndex, INDEX_FILE } from "./history_index.ts";
import { readHistory } from "./history_reader.ts";
import { HistoryRecorder, INDEX_COUNTS_MS, INDEX_SMALL_BYTES } from "./history_recorder.ts";

const T0 = 1_700_000_000_000;

async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "history-index-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Stream "a" from `seq`: 20 quiet windows, 6 flagged ones (an incident), 30 quiet ones to resolve it. */
const incidentAt = (seq: number): Row[] => [
  ...quiet("a", seq, 20),
  ...Array.from({ length: 6 }, (_, k) => ({ stream: "a", seq: seq + 20 + k, flagged: [0, 1] })),
  ...quiet("a", seq + 26, 30),
];

test("history recorder's index names only the incidents with frames left on disk once chunks are dropped", async () => {
  await inTempDir(async (dir) => {
    const model = modelOf(100);
    // About 450 bytes a frame: a 200 KB bound keeps some 8 of the 60 incidents' stretches.
    const recorder = new HistoryRecorder({
      dir,
      model,
      maxBytes: 200_000,
      everyN: 1,
      runFrames: 10,
    });
    const path = new AlertPathIncidents(model);
    for (let i = 0; i < 60; i++) {
      feed(recorder, model, incidentAt(i * 56), { t0: T0, incidents: path });
      await recorder.flush();
    }
    await recorder.close();
    const read = await readHistory(dir, { model: "m" });
    const onDisk = new Set(read.frames.filter((f) => f.incident).map((f) => f.incident));
    assert.ok(onDisk.size > 2 && onDisk.size < 20, `${onDisk.size} incidents on disk`);
    assert.ok(read.index.dropped_chunks > 0);
    assert.deepEqual(Object.keys(read.index.incidents).sort(), [...onDisk].sort());
  });
});

test("history recorder rewrites a large index for counts alone at most every 30 s, at once for a new incident, and at close", async () => {
  await inTempDir(async (dir) => {
    // An index of another stream's incidents (whose frames are still to come: never dropped).
    const seeded = emptyIndex("m");
    for (let i = 0; i < 1000; i++) {
      seeded.incidents[`old-${i}`] = {
        stream: "old",
        first: T0 + 10 ** 9,
        last: T0 + 10 ** 9,
        frames: 1,
        verdict: null,
      };
    }
    await writeFile(join(dir, INDEX_FILE), JSON.stringify(seeded));
    const model = modelOf(8);
    let now = 0;
    let off = false;
    const recorder = new HistoryRecorder({
      dir,
      model,
      maxBytes: 64 * 2 ** 20,
      everyN: 1,
      runFrames: 10,
      now: () => now,
      excluded: () => (off ? "machine_off" : undefined),
    });
    const path = new AlertPathIncidents(model);
    const file = join(dir, INDEX_FILE);
    let seq = 0;
    /** One more window of "a", then a flush: whether index.json was rewritten. */
    const step = async (rows: Row[] = quiet("a", seq, 1)) => {
      const marked = `${await readFile(file, "utf8")}\n`;
      await writeFile(file, marked);
      feed(recorder, model, rows, { t0: T0, incidents: path });
      seq += rows.length;
      await recorder.flush();
      return (await readFile(file, "utf8")) !== marked;
    };
    try {
      assert.equal(await step(), true, "the first flush writes the index");
      assert.ok((await readFile(file, "utf8")).length > INDEX_SMALL_BYTES);
      off = true;
      const rewritten: boolean[] = [];
      for (const at of [1_000, 10_000, INDEX_COUNTS_MS - 1]) {
        now = at;
        rewritten.push(await step());
      }
      assert.deepEqual(rewritten, [false, false, false], "counts alone within 30 s: no rewrite");
      now = INDEX_COUNTS_MS;
      assert.equal(await step(), true, "30 s after the last write the counts are written");
      const counted = JSON.parse(await readFile(file, "utf8"));
      assert.equal(counted.excluded.machine_off, 4);
      off = false;
      now += 1_000;
      assert.equal(await step(incidentAt(seq)), true, "a new incident is written at once");
      const named = JSON.parse(await readFile(file, "utf8"));
      assert.equal(Object.keys(named.incidents).length, 1001);
      off = true;
      now += 1_000;
      assert.equal(await step(), false);
    } finally {
      await recorder.close();
    }
    const closed = JSON.parse(await readFile(file, "utf8"));
    assert.equal(closed.excluded.machine_off, 5, "the close writes the counts");
  });
});
