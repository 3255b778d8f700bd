// The training history: bounded, decimated, incidents and silences left out, false alarms let back in.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { DecisionsClient } from "../decisions/decisions_client.ts";
import { AlertPathIncidents } from "./_test/alert_path_incidents.ts";
import { alertPathOf, feed, modelOf, quiet, type Row, reading } from "./_test/scored_rows.ts";
import { frameUse, readHistory } from "./history_reader.ts";
import {
  HistoryRecorder,
  type HistoryRecorderOptions,
  type RecordedModel,
  runOf,
  runPhase,
} from "./history_recorder.ts";
import { SilenceExclusion } from "./silence_exclusion.ts";

const run = promisify(execFile);

/** A recorder of every window (runs of 10) in `dir`, with `extra` options. */
const recorderIn = (
  dir: string,
  model: RecordedModel,
  extra: Partial<HistoryRecorderOptions> = {},
) =>
  new HistoryRecorder({
    dir,
    model,
    maxBytes: 64 * 2 ** 20,
    everyN: 1,
    runFrames: 10,
    ...extra,
  });

async function withRecorder(
  options: Partial<HistoryRecorderOptions> & { features?: number },
  body: (r: HistoryRecorder, dir: string, model: RecordedModel) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "history-"));
  const model = modelOf(options.features ?? 8);
  const recorder = recorderIn(dir, model, options);
  try {
    await body(recorder, dir, model);
  } finally {
    await recorder.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The seqs read back for `stream`, and whether each is usable for training. */
async function readBack(dir: string, model: RecordedModel, stream = "a") {
  const read = await readHistory(dir, { model: model.name, featureNames: model.feature_names });
  const frames = read.frames.filter((f) => f.streamId === stream);
  for (const f of frames) {
    assert.deepEqual(
      Array.from(f.values),
      Array.from({ length: model.n_features }, (_, i) => Math.fround(reading(f.seq, i))),
      `frame ${f.seq} read back as written`,
    );
  }
  return {
    read,
    seqs: frames.map((f) => f.seq),
    used: frames.filter((f) => frameUse(f, read.index).use).map((f) => f.seq),
    frames,
  };
}

describe("history recorder", () => {
  test("records every scored window's newest frame, readable back", async () => {
    await withRecorder({}, async (recorder, dir, model) => {
      feed(recorder, model, quiet("a", 0, 50));
      await recorder.flush();
      const { seqs, used, read } = await readBack(dir, model);
      assert.deepEqual(
        seqs,
        Array.from({ length: 46 }, (_, i) => i),
      );
      assert.deepEqual(used, seqs);
      assert.equal(read.skippedRecords, 0);
    });
  });

  test("decimates by runs: one run of HISTORY_RUN_FRAMES frame intervals in every HISTORY_EVERY_N", async () => {
    await withRecorder({ everyN: 3, runFrames: 10 }, async (recorder, dir, model) => {
      feed(recorder, model, quiet("a", 0, 70));
      await recorder.flush();
      const { seqs } = await readBack(dir, model);
      const phase = runPhase("a", 3);
      // Runs on the stream's clock (1 s a frame, measured over its first 5 steps).
      const run = (s: number) => runOf(1_700_000_000_000 + s * 1000, 10, 1000);
      const expected = [...Array(66).keys()].filter((s) => s >= 5 && (run(s) + phase) % 3 === 0);
      assert.deepEqual(seqs, expected);
      assert.ok(seqs.length >= 20, `one run in 3 of 70 frames: ${seqs.length}`);
    });
  });

  test("streams keep different runs: the phase comes from the stream id", () => {
    const phases = new Set(Array.from({ length: 48 }, (_, i) => runPhase(`line-${i}`, 24)));
    assert.ok(phases.size >= 12, `48 streams over 24 phases: ${phases.size} distinct`);
    assert.equal(runPhase("anything", 1), 0);
  });

  test("stays within HISTORY_MAX_BYTES by dropping the oldest chunks", async () => {
    // 1,000 sensors: ~4 KB a frame; 200 KB bound, chunks of 64 KiB.
    const maxBytes = 200_000;
    await withRecorder(
      { maxBytes, features: 1000, flushBytes: 40_000 },
      async (recorder, dir, model) => {
        for (let i = 0; i < 400; i += 20) {
          feed(recorder, model, quiet("a", i, 20));
          await recorder.flush();
        }
        const names = (await readdir(dir)).filter((n) => n.endsWith(".chunk"));
        let bytes = 0;
        for (const n of names) bytes += (await stat(join(dir, n))).size;
        assert.ok(bytes <= maxBytes + 40_000, `${bytes} bytes on disk`);
        const { seqs, read } = await readBack(dir, model);
        assert.ok(seqs.length < 400 && seqs.length > 20, `${seqs.length} frames kept`);
        assert.equal(seqs.at(-1), 395, "the newest frames are kept");
        assert.deepEqual(
          seqs,
          [...Array(seqs.length).keys()].map((i) => 396 - seqs.length + i),
        );
        assert.ok(read.index.dropped_chunks > 0);
      },
    );
  });

  test("a switch to other sensors keeps the frames the old version scored under the old sensors' header", async () => {
    const older = modelOf(8, "1");
    // Other sensors, as many: only the chunk header tells the two models' frames apart.
    const newer = { ...modelOf(8, "2"), feature_names: older.feature_names.map((n) => `new_${n}`) };
    // Queued and not written at the switch; then written (no chunk open) while the switch happens.
    for (const before of [async () => {}, (r: HistoryRecorder) => void r.flush()]) {
      const dir = await mkdtemp(join(tmpdir(), "history-switch-"));
      const recorder = recorderIn(dir, older);
      try {
        feed(recorder, older, quiet("a", 0, 50));
        await before(recorder);
        feed(recorder, newer, quiet("a", 1000, 50));
        await recorder.close();
        const read = async (m: RecordedModel) =>
          (await readHistory(dir, { model: m.name, featureNames: m.feature_names })).frames.map(
            (f) => (f.timestamp - 1_700_000_000_000) / 1000,
          );
        // Rows by their position in feed's timeline (the frame's timestamp).
        const rows = (from: number) => Array.from({ length: 46 }, (_, i) => from + i);
        assert.deepEqual(await read(older), rows(0), "the old version's frames, as the old model");
        assert.deepEqual(await read(newer), rows(1000), "none of them read as the new model");
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  test("holds frames while an incident confirms and tags every frame of it, from its start to its resolution", async () => {
    await withRecorder({}, async (recorder, dir, model) => {
      const rows: Row[] = [
        ...quiet("a", 0, 10),
        { stream: "a", seq: 10, flagged: [1] }, // a lone flag (1 of 3): not confirmed
        ...quiet("a", 11, 9),
        { stream: "a", seq: 20, flagged: [2] },
        { stream: "a", seq: 21 },
        { stream: "a", seq: 22, flagged: [2] }, // 2 of 3: opened, started at 20
        { stream: "a", seq: 23, flagged: [2] },
        ...quiet("a", 24, 3), // the third quiet window resolves it
        ...quiet("a", 27, 10),
      ];
      feed(recorder, model, rows);
      await recorder.flush();
      const { seqs, used, frames, read } = await readBack(dir, model);
      assert.deepEqual(
        seqs.toSorted((x, y) => x - y),
        [...Array(33).keys()],
      );
      const tagged = frames.filter((f) => f.incident).map((f) => f.seq);
      assert.deepEqual(
        tagged.toSorted((x, y) => x - y),
        [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26],
      );
      assert.deepEqual(
        used.toSorted((x, y) => x - y),
        [...Array(33).keys()].filter((s) => s < 16 || s > 26),
      );
      const [id] = Object.keys(read.index.incidents);
      assert.equal(read.index.incidents[id].frames, 11);
      assert.equal(read.index.incidents[id].verdict, null);
      assert.deepEqual(frameUse(frames.find((f) => f.seq === 22)!, read.index), {
        use: false,
        why: "incident_unjudged",
      });
    });
  });
});

describe("history recorder when an incident's start frame was not kept", () => {
  const t0 = 1_700_000_000_000;
  // Windows 20 and 21 flagged (2 of 3): opened at 21, started at 20; its first window is 16..20.
  const rows = (stream: string, n: number): Row[] =>
    Array.from({ length: n }, (_, seq) => ({
      stream,
      seq,
      flagged: seq === 20 || seq === 21 ? [1] : [],
    }));

  test("tags the kept frames of the first window when the start falls outside a kept run", async () => {
    // Runs of 10, one in 2: a stream keeping 10..19 and not 20..29 has the start (20) unkept.
    const stream = ["a", "b", "c", "d", "e"].find((id) => runPhase(id, 2) === 1)!;
    await withRecorder({ everyN: 2, runFrames: 10 }, async (recorder, dir, model) => {
      feed(recorder, model, rows(stream, 60), { batchSize: 8 });
      await recorder.flush();
      const { seqs, used, frames } = await readBack(dir, model, stream);
      assert.ok(seqs.includes(19) && !seqs.includes(20), "19 kept, the start (20) not");
      assert.deepEqual(
        frames.filter((f) => f.incident).map((f) => f.seq),
        [16, 17, 18, 19],
      );
      assert.deepEqual(
        used,
        seqs.filter((s) => s < 16 || s > 19),
      );
    });
  });

  test("tags the kept frames of the first window when the start's own frame is left out", async () => {
    // A silence on the start frame only: it is not recorded, its window's other frames are.
    const excluded = (_: string, at: number) => (at === t0 + 20_000 ? "silenced" : undefined);
    await withRecorder({ excluded }, async (recorder, dir, model) => {
      feed(recorder, model, rows("a", 40), { t0 });
      await recorder.flush();
      const { seqs, frames, read } = await readBack(dir, model);
      assert.ok(!seqs.includes(20));
      // Through the window resolving it (24: the third quiet one after 21).
      assert.deepEqual(
        frames.filter((f) => f.incident).map((f) => f.seq),
        [16, 17, 18, 19, 21, 22, 23, 24],
      );
      assert.equal(Object.values(read.index.incidents)[0].first, t0 + 16_000);
    });
  });
});

describe("history recorder across a machine stop", () => {
  test("a stop ends the incident open there and breaks the run; what was held is decided clean", async () => {
    await withRecorder({}, async (recorder, dir, model) => {
      const t0 = 1_700_000_000_000;
      const path = alertPathOf(recorder, model);
      const stop = (stream: string) => {
        // As the engine tells a stop: the alert path, then the recorder.
        path.machineStopped(stream);
        recorder.machineStopped(stream);
      };
      // Incident A opens (10..12 flagged), then the machine stops at frame 13 (frames 13..17
      // are a stopped machine's: not scored), and runs again from 18. Stream "c" was confirming
      // (one flagged window) when it stopped: no incident, its held frames are clean.
      feed(recorder, model, [
        ...quiet("a", 0, 10),
        { stream: "a", seq: 10, flagged: [1] },
        { stream: "a", seq: 11, flagged: [1] },
        { stream: "a", seq: 12, flagged: [1] },
        ...quiet("c", 0, 10),
        { stream: "c", seq: 10, flagged: [1] },
      ]);
      stop("a");
      stop("c");
      // After the restart: incident B (20..22 flagged), resolved by quiet windows.
      feed(recorder, model, [
        ...quiet("a", 18, 2),
        { stream: "a", seq: 20, flagged: [3] },
        { stream: "a", seq: 21, flagged: [3] },
        { stream: "a", seq: 22, flagged: [3] },
        ...quiet("a", 23, 8),
      ]);
      await recorder.flush();
      const read = await readHistory(dir, { model: model.name, featureNames: model.feature_names });
      const frames = read.frames.filter((f) => f.streamId === "a");
      const frameOf = (rowSeq: number) => frames.find((f) => f.timestamp === t0 + rowSeq * 1000);
      // The recorder's sequence goes on past the stop with a gap: the frames either side of it
      // are not one run for the reader.
      assert.equal(frameOf(9)?.seq, 9);
      assert.equal(frameOf(12)?.seq, 12);
      assert.equal(frameOf(18)?.seq, 14);
      assert.equal(frameOf(19)?.seq, 15);
      const a = frameOf(11)?.incident;
      const b = frameOf(21)?.incident;
      assert.ok(a && b, "both incidents tagged their frames");
      assert.notEqual(a, b, "B is its own incident, not A carried over the stop");
      assert.deepEqual(Object.keys(read.index.incidents).sort(), [a, b].sort());
      assert.ok(
        frames.filter((f) => f.timestamp >= t0 + 18_000).every((f) => f.incident !== a),
        "no frame after the stop is A's",
      );
      const c = read.frames.filter((f) => f.streamId === "c");
      assert.deepEqual(
        c.map((f) => f.seq),
        [...Array(11).keys()],
        "c's frames held at the stop are written",
      );
      assert.ok(c.every((f) => f.incident === ""));
    });
  });

  test("which runs are kept follows stream time: machines cycling on and off, and an engine restart, keep the schedule", async () => {
    const dir = await mkdtemp(join(tmpdir(), "history-cycles-"));
    const t0 = 1_700_000_000_000;
    const model = modelOf(4);
    const options = { everyN: 4, runFrames: 10 };
    const streams = Array.from({ length: 16 }, (_, i) => `line-${i}`);
    // Each machine runs 25 s (a window a second), stops 10 s; 8 cycles; the engine restarts
    // after the 4th. Seq-based runs restarted at every start: a run of 10 in 4 then only ever
    // saw the first 25 windows after a start, and the streams of 2 phases of 4 never recorded.
    const onFrom = (cycle: number) => cycle * 35;
    let recorder = recorderIn(dir, model, options);
    let path = new AlertPathIncidents(model);
    try {
      for (let cycle = 0; cycle < 8; cycle++) {
        if (cycle === 4) {
          await recorder.close();
          recorder = recorderIn(dir, model, options);
          path = path.restarted();
        }
        const rows = streams.flatMap((s) => quiet(s, onFrom(cycle), 25));
        feed(recorder, model, rows, { t0, incidents: path, batchSize: 64 });
        for (const s of streams) {
          path.machineStopped(s);
          recorder.machineStopped(s);
        }
      }
      await recorder.close();
      const read = await readHistory(dir, { model: model.name, featureNames: model.feature_names });
      for (const stream of streams) {
        const phase = runPhase(stream, options.everyN);
        // A recorder measures a stream's interval over its first 5 steps before it keeps any.
        const expected = [0, 1, 2, 3, 4, 5, 6, 7].flatMap((cycle) =>
          Array.from({ length: 25 }, (_, i) => onFrom(cycle) + i).filter(
            (at) =>
              !((cycle === 0 || cycle === 4) && at - onFrom(cycle) < 5) &&
              (runOf(t0 + at * 1000, 10, 1000) + phase) % 4 === 0,
          ),
        );
        const recorded = read.frames
          .filter((f) => f.streamId === stream)
          .map((f) => (f.timestamp - t0) / 1000);
        assert.deepEqual(recorded, expected, `${stream} (phase ${phase})`);
        assert.ok(recorded.length > 0, `${stream} has history`);
        assert.ok(
          recorded.some((at) => at % 35 >= 10),
          `${stream} is sampled past the first run of each start`,
        );
      }
      // Frames either side of a stop are never adjacent (the seq skips one there).
      for (const stream of streams) {
        const frames = read.frames.filter((f) => f.streamId === stream);
        for (let i = 1; i < frames.length; i++) {
          const [p, f] = [frames[i - 1], frames[i]];
          if (p.session === f.session && p.seq + 1 === f.seq) {
            assert.equal(f.timestamp - p.timestamp, 1000, "adjacent frames are a step apart");
          }
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("history recorder takes incidents from the alert path", () => {
  const t0 = 1_700_000_000_000;
  const flaggedRows = (from: number, n: number): Row[] =>
    Array.from({ length: n }, (_, i) => ({ stream: "a", seq: from + i, flagged: [2] }));

  test("an incident open across an engine restart keeps the alert's id: a false alarm lets all its frames back in", async () => {
    const dir = await mkdtemp(join(tmpdir(), "history-restart-"));
    const model = modelOf(8);
    try {
      const before = new AlertPathIncidents(model);
      const first = recorderIn(dir, model);
      feed(first, model, [...quiet("a", 0, 10), ...flaggedRows(10, 10)], {
        t0,
        incidents: before,
      });
      await first.close();
      const alerted = before.tracker.snapshot("a")?.incident?.id;
      assert.ok(alerted, "the alert path opened an incident");
      // The next start: the alert path restores its state, the recorder starts empty.
      const verdicts = new Map([[alerted, "false_positive" as const]]);
      const second = recorderIn(dir, model, { verdictOf: (id) => verdicts.get(id) });
      feed(second, model, [...flaggedRows(20, 10), ...quiet("a", 30, 15)], {
        t0,
        incidents: before.restarted(),
      });
      await second.close();
      // After the restart the recorder's seq starts again: frames are found by time.
      const read = await readHistory(dir, { model: model.name, featureNames: model.feature_names });
      const frames = read.frames;
      const tagged = new Set(frames.filter((f) => f.incident).map((f) => f.incident));
      assert.deepEqual([...tagged], [alerted], "every tagged frame names the alerted incident");
      assert.deepEqual(Object.keys(read.index.incidents), [alerted]);
      assert.ok(frames.some((f) => f.incident && f.timestamp >= t0 + 20_000));
      assert.ok(
        frames.every((f) => frameUse(f, read.index).use),
        "the false alarm's frames are all usable",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a confirmed incident open across a restart keeps every frame inside it out of training", async () => {
    const dir = await mkdtemp(join(tmpdir(), "history-restart-tp-"));
    const model = modelOf(8);
    // INCIDENT_CONFIRM_K=6 of N=6, 30 quiet windows resolve: a fresh tracker after the restart
    // would need 6 flagged windows in a row, and a sporadic flag keeps this incident open.
    const settings = { confirmK: 6, confirmN: 6, quietWindows: 30 };
    try {
      const before = new AlertPathIncidents(model, settings);
      const first = recorderIn(dir, model);
      const sporadic = (from: number, n: number): Row[] =>
        Array.from({ length: n }, (_, i) => ({
          stream: "a",
          seq: from + i,
          flagged: i % 10 === 0 ? [2] : [],
        }));
      feed(first, model, [...quiet("a", 0, 10), ...flaggedRows(10, 6), ...sporadic(16, 20)], {
        t0,
        incidents: before,
      });
      await first.close();
      const alerted = before.tracker.snapshot("a")?.incident;
      assert.ok(alerted, "the alert path opened an incident");
      const after_ = before.restarted();
      const second = recorderIn(dir, model, {
        verdictOf: (id) => (id === alerted.id ? "true_positive" : undefined),
      });
      feed(second, model, [...sporadic(36, 50), ...quiet("a", 86, 40)], {
        t0,
        incidents: after_,
      });
      await second.close();
      assert.equal(after_.tracker.has("a"), false, "resolved after the restart");
      // After the restart the recorder's seq starts again: frames are found by time.
      const read = await readHistory(dir, { model: model.name, featureNames: model.feature_names });
      const frames = read.frames;
      // Resolved by the 30th quiet window after the last flag (76): window 106.
      const inside = frames.filter((f) => f.timestamp >= t0 + 6_000 && f.timestamp <= t0 + 106_000);
      assert.ok(inside.length > 60, `${inside.length} frames recorded inside the incident`);
      assert.deepEqual(
        inside.filter((f) => frameUse(f, read.index).use).map((f) => (f.timestamp - t0) / 1000),
        [],
        "no frame inside the confirmed incident is used for training",
      );
      assert.deepEqual(Object.keys(read.index.incidents), [alerted.id]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("in ALERT_MODE=frame a flagged window's frames are left out, counted as anomalous", async () => {
    await withRecorder({}, async (recorder, dir, model) => {
      feed(recorder, model, [...quiet("a", 0, 10), ...flaggedRows(10, 1), ...quiet("a", 11, 10)], {
        incidents: "frame",
      });
      await recorder.flush();
      const { seqs, read } = await readBack(dir, model);
      // The flagged window 10 holds frames 6..10; the last 4 frames wait for later windows.
      assert.deepEqual(
        seqs,
        [...Array(17).keys()].filter((s) => s < 6 || s > 10),
      );
      assert.equal(read.index.excluded.anomalous, 5);
      assert.deepEqual(read.index.incidents, {});
    });
  });
});

describe("history recorder with operators' decisions", () => {
  let server: Server;
  let base: string;
  const feeds: { silences: unknown[]; verdicts: unknown[] } = { silences: [], verdicts: [] };

  before(async () => {
    server = createServer((req, res) => {
      const as_of = new Date().toISOString();
      res.writeHead(200, { "content-type": "application/json" });
      if (req.url?.startsWith("/api/v1/silences/effective")) {
        res.end(JSON.stringify({ as_of, silences: feeds.silences }));
      } else res.end(JSON.stringify({ as_of, verdicts: feeds.verdicts }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function client(): Promise<{ decisions: DecisionsClient; remove: () => Promise<void> }> {
    const dir = await mkdtemp(join(tmpdir(), "history-decisions-"));
    const decisions = new DecisionsClient({ baseUrl: base, dir, pollMs: 60_000 });
    assert.deepEqual(await decisions.pullNow(), { silences: "updated", verdicts: "updated" });
    return { decisions, remove: () => rm(dir, { recursive: true, force: true }) };
  }

  /** A silence as the feed serves it, on frames `from` to `to` of a stream starting at `t0` (1 s a frame). */
  const silenceFrom =
    (t0: number) => (id: string, stream: string, sensors: string[], from: number, to: number) => ({
      silence_id: id,
      matchers: { stream, sensors },
      starts_at: new Date(t0 + from * 1000).toISOString(),
      ends_at: new Date(t0 + to * 1000).toISOString(),
      recurrence: null,
      reason: "maintenance",
      created_by: "ops",
      created_at: new Date().toISOString(),
      expired_at: null as string | null,
      expired_by: null,
      expired_reason: null,
      state: "active",
    });

  test("an incident operators mark a false alarm is let back in; a confirmed one stays out", async () => {
    await withRecorder({}, async (recorder, dir, model) => {
      const incident = (from: number): Row[] => [
        { stream: "a", seq: from, flagged: [3] },
        { stream: "a", seq: from + 1, flagged: [3] },
        ...quiet("a", from + 2, 3),
      ];
      feed(recorder, model, [
        ...quiet("a", 0, 5),
        ...incident(5),
        ...quiet("a", 10, 5),
        ...incident(15),
        ...quiet("a", 20, 5),
      ]);
      await recorder.flush();
      const ids = Object.entries((await readBack(dir, model)).read.index.incidents)
        .sort((x, y) => x[1].first - y[1].first)
        .map(([id]) => id);
      assert.equal(ids.length, 2);
      const at = new Date().toISOString();
      feeds.verdicts = [
        { incident_id: ids[0], stream_id: "a", verdict: "false_positive", at },
        { incident_id: ids[1], stream_id: "a", verdict: "true_positive", at },
      ];
      const { decisions, remove } = await client();
      try {
        // The same recorder, now with the verdict hook: its next flush refreshes the index.
        const judged = recorderIn(dir, model, {
          verdictOf: (id) => decisions.verdictOf(id),
        });
        feed(judged, model, quiet("b", 0, 1));
        await judged.close();
        const { used, read } = await readBack(dir, model);
        assert.equal(read.index.incidents[ids[0]].verdict, "false_positive");
        assert.equal(read.index.incidents[ids[1]].verdict, "true_positive");
        assert.deepEqual(
          used.toSorted((x, y) => x - y),
          [...Array(21).keys()].filter((s) => s < 11 || s > 19),
        );
        // An engine that holds no verdicts (its copy lost, the backend down, or the backend
        // pruned the incidents) keeps the verdicts the index has: they are never withdrawn.
        const blind = recorderIn(dir, model, {
          verdictOf: () => undefined,
        });
        feed(blind, model, quiet("c", 0, 1));
        await blind.close();
        const kept = (await readBack(dir, model)).read.index.incidents;
        assert.equal(kept[ids[0]].verdict, "false_positive");
        assert.equal(kept[ids[1]].verdict, "true_positive");
      } finally {
        feeds.verdicts = [];
        await remove();
      }
    });
  });

  test("index.json is rewritten only when something in it changed, not at every flush", async () => {
    const verdicts = new Map<string, "false_positive">();
    await withRecorder({ verdictOf: (id) => verdicts.get(id) }, async (recorder, dir, model) => {
      feed(recorder, model, [
        ...quiet("a", 0, 5),
        { stream: "a", seq: 5, flagged: [3] },
        { stream: "a", seq: 6, flagged: [3] },
        ...quiet("a", 7, 8),
      ]);
      await recorder.flush();
      const path = join(dir, "index.json");
      const [id] = Object.keys(JSON.parse(await readFile(path, "utf8")).incidents);
      assert.ok(id, "the incident is in the index");
      // A mark no rewrite keeps (the recorder writes JSON without a trailing newline).
      const marked = `${await readFile(path, "utf8")}\n`;
      await writeFile(path, marked);
      for (let i = 0; i < 3; i++) await recorder.flush();
      assert.equal(await readFile(path, "utf8"), marked, "idle flushes leave index.json alone");
      verdicts.set(id, "false_positive");
      await recorder.flush();
      const judged = await readFile(path, "utf8");
      assert.notEqual(judged, marked, "a verdict that changed is written");
      assert.equal(JSON.parse(judged).incidents[id].verdict, "false_positive");
      await writeFile(path, `${judged}\n`);
      await recorder.flush();
      assert.equal(await readFile(path, "utf8"), `${judged}\n`, "the same verdict again: no write");
      feed(recorder, model, quiet("b", 0, 10));
      await recorder.flush();
      assert.equal(await readFile(path, "utf8"), `${judged}\n`, "clean frames change no index");
    });
  });

  test("an index damaged on disk is moved aside with a warning, not silently overwritten", async () => {
    await withRecorder({}, async (first, dir, model) => {
      feed(first, model, quiet("a", 0, 3));
      await first.flush();
      await writeFile(join(dir, "index.json"), '{"v":1,"incid');
      const warned: string[] = [];
      const second = recorderIn(dir, model, {
        log: {
          warn: (message: string) => warned.push(message),
          error: () => {},
        },
      });
      feed(second, model, quiet("b", 0, 1));
      await second.close();
      assert.equal(warned.filter((m) => m.startsWith("training history index unusable")).length, 1);
      const aside = (await readdir(dir)).filter((n) => n.startsWith("index.json.unusable-"));
      assert.equal(aside.length, 1);
      assert.equal(await readFile(join(dir, aside[0]), "utf8"), '{"v":1,"incid');
    });
  });

  test("frames in a silence (whole stream, or some of its sensors) are not recorded, and counted", async () => {
    const t0 = 1_700_000_000_000;
    const silence = silenceFrom(t0);
    feeds.silences = [
      silence(crypto.randomUUID(), "a", [], 10, 20),
      silence(crypto.randomUUID(), "b", ["s7"], 0, 30),
    ];
    const { decisions, remove } = await client();
    try {
      const exclusion = new SilenceExclusion(decisions);
      const model = modelOf(8);
      await withRecorder(
        { excluded: (stream, at) => exclusion.reason(stream, at, model.feature_names) },
        async (recorder, dir) => {
          feed(recorder, model, [...quiet("a", 0, 40), ...quiet("b", 0, 40)], { t0 });
          await recorder.flush();
          const a = await readBack(dir, model, "a");
          assert.deepEqual(
            a.seqs,
            [...Array(36).keys()].filter((s) => s < 10 || s >= 20),
          );
          const b = await readBack(dir, model, "b");
          // The sensor silence's end is honoured within SENSOR_SILENCE_RECHECK_MS (10 frames here).
          assert.deepEqual(
            b.seqs,
            [...Array(36).keys()].filter((s) => s >= 30),
          );
          assert.equal(a.read.index.excluded.silenced, 10 + 30);
        },
      );
    } finally {
      feeds.silences = [];
      await remove();
    }
  });

  test("a silence learned after its frames were recorded (starts_at in the past) leaves them out when read", async () => {
    const t0 = 1_700_000_000_000;
    const iso = (seq: number) => new Date(t0 + seq * 1000).toISOString();
    const silence = silenceFrom(t0);
    const { decisions, remove } = await client();
    try {
      const model = modelOf(8);
      await withRecorder({ silences: () => decisions.silences() }, async (recorder, dir) => {
        feed(recorder, model, [...quiet("a", 0, 40), ...quiet("b", 0, 40)], { t0 });
        await recorder.flush();
        assert.equal((await readBack(dir, model, "a")).used.length, 36, "no silence yet");
        const whole = silence(crypto.randomUUID(), "a", [], 10, 20);
        const onSensor = silence(crypto.randomUUID(), "b", ["s7"], 0, 30);
        const offModel = silence(crypto.randomUUID(), "*", ["valve_*"], 0, 40);
        const endedBefore = silence(crypto.randomUUID(), "a", [], -100, -50);
        feeds.silences = [whole, onSensor, offModel, endedBefore];
        await decisions.pullNow();
        await recorder.flush();
        const a = await readBack(dir, model, "a");
        assert.deepEqual(
          a.used,
          [...Array(36).keys()].filter((s) => s < 10 || s >= 20),
        );
        assert.deepEqual(frameUse(a.frames[12], a.read.index), { use: false, why: "silenced" });
        // A silence on one of the model's sensors leaves whole frames out, as when recording.
        const b = await readBack(dir, model, "b");
        assert.deepEqual(
          b.used,
          [...Array(36).keys()].filter((s) => s >= 30),
        );
        assert.deepEqual(
          Object.keys(a.read.index.silences ?? {}).sort(),
          [whole.silence_id, onSensor.silence_id].sort(),
          "kept: the silences touching the model whose span reaches its oldest frame",
        );
        // Expired early: the frames after the expiry are back in.
        whole.expired_at = iso(15);
        await decisions.pullNow();
        await recorder.flush();
        assert.deepEqual(
          (await readBack(dir, model, "a")).used,
          [...Array(36).keys()].filter((s) => s < 10 || s >= 15),
        );
        // The backend's feed drops silences over for a day: the index keeps them while their frames are there.
        feeds.silences = [];
        await decisions.pullNow();
        await recorder.flush();
        const later = recorderIn(dir, model, { silences: () => decisions.silences() });
        feed(later, model, quiet("c", 0, 1), { t0 });
        await later.close();
        assert.deepEqual(
          (await readBack(dir, model, "b")).used,
          [...Array(36).keys()].filter((s) => s >= 30),
        );
      });
    } finally {
      feeds.silences = [];
      await remove();
    }
  });
});

test("on a full disk, every flush fails but leaves no chunk, temporary file or open handle behind", async () => {
  const dir = await mkdtemp(join(tmpdir(), "history-full-"));
  try {
    // `ulimit -f 0`: every write to a file fails with EFBIG, as a full disk fails with ENOSPC.
    const script = join(import.meta.dirname, "_test", "full_disk_recorder.ts");
    const { stdout } = await run("bash", [
      "-c",
      `ulimit -f 0 && exec "${process.execPath}" --import tsx "${script}" "${dir}" 30`,
    ]);
    const fds = JSON.parse(stdout.trim().split("\n").at(-1) as string);
    assert.ok(fds.after - fds.before <= 1, `descriptors ${fds.before} -> ${fds.after}`);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.endsWith(".chunk") || n.endsWith(".tmp")),
      [],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
