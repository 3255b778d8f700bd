// The training history with many streams: as many tracked as the engine admits, the least recently scored forgotten first, and said.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { HistoryStore } from "../evidence/history_store.ts";
import { AlertPathIncidents } from "./_test/alert_path_incidents.ts";
import { feed, modelOf, type Row } from "./_test/scored_rows.ts";
import { historyRecordersFor } from "./from_config.ts";
import { readHistory } from "./history_reader.ts";
import { HistoryRecorder } from "./history_recorder.ts";
import { SilenceExclusion } from "./silence_exclusion.ts";

const T0 = 1_700_000_000_000;

async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "history-streams-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The seqs of `stream`'s frames read back from `dir`. */
async function seqsOf(dir: string, stream: string): Promise<number[]> {
  const read = await readHistory(dir, { model: "m" });
  return read.frames
    .filter((f) => f.streamId === stream)
    .map((f) => f.seq)
    .sort((a, b) => a - b);
}

test("history recorder forgets the least recently scored stream, not the first one it met, and says so once a minute with a count", async () => {
  await inTempDir(async (dir) => {
    const model = modelOf(4);
    const warnings: Record<string, unknown>[] = [];
    let now = 0;
    const recorder = new HistoryRecorder({
      dir,
      model,
      maxBytes: 64 * 2 ** 20,
      everyN: 1,
      runFrames: 10,
      maxStreams: 2,
      now: () => now,
      log: {
        warn: (message, fields) => {
          if (message.startsWith("training history forgets streams")) warnings.push(fields ?? {});
        },
        error: () => {},
      },
    });
    // Stream "a" is scored at every step, "b" and "c" take turns: two places, three streams.
    const rows: Row[] = [];
    for (let t = 0; t < 20; t++)
      rows.push({ stream: "a", seq: t }, { stream: t % 2 ? "c" : "b", seq: t });
    feed(recorder, model, rows.slice(0, 20), { t0: T0, batchSize: 4 });
    now += 60_000;
    feed(recorder, model, rows.slice(20), { t0: T0, batchSize: 4 });
    await recorder.close();
    // "a" is never the least recently scored when a place is needed: every frame of it is
    // recorded but the last window_size - 1, held at close.
    assert.deepEqual(await seqsOf(dir, "a"), [...Array(16).keys()]);
    // The turn-takers are forgotten at every step, so their held frames never get written.
    assert.deepEqual(await seqsOf(dir, "b"), []);
    // A turn-taker is dropped at steps 1..19: said at once, then, a minute later, with the 8
    // left unsaid in between and that one.
    assert.deepEqual(
      warnings.map((w) => [w.streams_dropped, w.max_streams, w.model]),
      [
        [1, 2, "m"],
        [9, 2, "m"],
      ],
    );
  });
});

test("historyRecordersFor tracks MAX_STREAMS streams of a model: 4,200 scored in turn are all recorded", async () => {
  await inTempDir(async (dir) => {
    const config = parseConfig(engineConfigSchema, {
      HISTORY_DIR: dir,
      HISTORY_EVERY_N: "1",
      HISTORY_RUN_FRAMES: "120",
      MAX_STREAMS: "5000",
    });
    const recorders = historyRecordersFor(config);
    assert.ok(recorders);
    const model = modelOf(4);
    const store = new HistoryStore({ frames: 64, features: 4, maxBytes: 2 ** 31 });
    const path = new AlertPathIncidents(model);
    // The rows go through the engine's own entry point (a lane: the model and its frame store).
    const lane = { model: { metadata: model }, history: store };
    const viaConfig = {
      scored: (batch, _store, _model, incidents) => recorders.scored(batch, lane, incidents),
    } as Pick<HistoryRecorder, "scored"> as HistoryRecorder;
    const streams = Array.from({ length: 4200 }, (_, i) => `machine-${i}`);
    try {
      for (let seq = 0; seq < 8; seq++) {
        const pass = streams.map((stream) => ({ stream, seq }));
        feed(viaConfig, model, pass, { t0: T0, batchSize: 64, store, incidents: path });
      }
    } finally {
      await recorders.close();
    }
    const read = await readHistory(join(dir, "m"), { model: "m" });
    const recorded = new Set(read.frames.map((f) => f.streamId));
    // 8 windows each, the last 4 held at close: frames 0..3 of every stream.
    assert.equal(recorded.size, streams.length);
    assert.equal(read.frames.length, streams.length * 4);
  });
});

test("silenceExclusion keeps a sensor answer for as many streams as it is told, forgetting the least recently asked about", () => {
  const asked: string[] = [];
  const exclusion = new SilenceExclusion(
    {
      silencedAt: () => undefined,
      silencedAtAny: (stream) => {
        asked.push(stream);
        return undefined;
      },
    },
    3,
  );
  const sensors = ["s0"];
  const ask = (stream: string, second: number) =>
    exclusion.reason(stream, T0 + second * 1000, sensors);
  for (const stream of ["a", "b", "c"]) ask(stream, 0);
  ask("a", 1);
  // A fourth stream takes the place of "b", the one not asked about for longest.
  ask("d", 1);
  asked.length = 0;
  for (const stream of ["a", "c", "d", "b"]) ask(stream, 2);
  assert.deepEqual(asked, ["b"]);
});

test("silenceExclusion with MAX_STREAMS places asks about each stream's sensors once per recheck, past 4,096 streams", () => {
  let lookups = 0;
  const exclusion = new SilenceExclusion(
    {
      silencedAt: () => undefined,
      silencedAtAny: (_stream, names) => {
        lookups += names.length;
        return undefined;
      },
    },
    5000,
  );
  const sensors = Array.from({ length: 20 }, (_, i) => `s${i}`);
  for (let second = 0; second < 5; second++) {
    for (let i = 0; i < 4200; i++) exclusion.reason(`st-${i}`, T0 + second * 1000, sensors);
  }
  assert.equal(lookups, 4200 * sensors.length);
});

test("silenceExclusion never answers for one model's sensors with what it found for another's", () => {
  const exclusion = new SilenceExclusion({
    silencedAt: () => undefined,
    silencedAtAny: (stream, names) =>
      stream === "line-1" && names.includes("bearing_temp") ? "silence-42" : undefined,
  });
  assert.equal(exclusion.reason("line-1", T0, ["flow", "pressure"]), undefined);
  assert.equal(
    exclusion.reason("line-1", T0 + 1000, ["bearing_temp", "vibration"]),
    "silenced:silence-42",
  );
});
