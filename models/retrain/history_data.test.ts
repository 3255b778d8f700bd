// The training series a retraining builds from a recorded history of several streams.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { HistoryFrame, HistoryRead } from "../../engine/history/mod.ts";
import { DEFAULT_CAL_FRACTION } from "../featurewise/split.ts";
import { prepareHistory } from "./history_data.ts";

const T0 = 1_700_000_000_000;

test("prepareHistory interleaves the streams' runs in time, so both the fit part and the calibration part hold every machine", () => {
  // Four machines recorded together: runs of 100 frames, one run of each in every 400 s, each
  // machine's reading its own number.
  const frames: HistoryFrame[] = [];
  for (let run = 0; run < 6; run++) {
    for (const [m, streamId] of ["pump-a", "pump-b", "pump-c", "pump-d"].entries()) {
      for (let k = 0; k < 100; k++) {
        const t = run * 400 + k;
        frames.push({
          streamId,
          timestamp: T0 + t * 1000,
          session: 1,
          // The recorder keeps one run in every few: seq jumps between runs.
          seq: run * 400 + k,
          incident: "",
          values: Float32Array.of(m),
        });
      }
    }
  }
  const read: HistoryRead = {
    frames,
    index: { v: 1, model: "m", updated_at: "", incidents: {}, excluded: {}, dropped_chunks: 0 },
    chunks: 1,
    otherFeatures: 0,
    skippedRecords: 0,
    skippedBytes: 0,
    warnings: [],
  };
  const { train } = prepareHistory(read, 1);
  const fitRows = Math.floor(train.nFrames * (1 - DEFAULT_CAL_FRACTION));
  const machines = (from: number, to: number) =>
    [...new Set(train.values.subarray(from, to))].sort((a, b) => a - b);
  assert.deepEqual(machines(0, fitRows), [0, 1, 2, 3], "the fit part");
  assert.deepEqual(machines(fitRows, train.nFrames), [0, 1, 2, 3], "the calibration part");
});

test("too little history says what was left out and why", () => {
  // 1,000 frames, 900 of them in an incident nobody judged yet: 100 usable.
  const frames: HistoryFrame[] = Array.from({ length: 1000 }, (_, k) => ({
    streamId: "line",
    timestamp: T0 + k * 1000,
    session: 1,
    seq: k,
    incident: k >= 100 ? "inc-1" : "",
    values: Float32Array.of(k),
  }));
  const read: HistoryRead = {
    frames,
    index: {
      v: 1,
      model: "m",
      updated_at: "",
      incidents: {
        "inc-1": {
          stream: "line",
          first: T0 + 100_000,
          last: T0 + 999_000,
          frames: 900,
          verdict: null,
        },
      },
      excluded: {},
      dropped_chunks: 0,
    },
    chunks: 1,
    otherFeatures: 0,
    skippedRecords: 0,
    skippedBytes: 0,
    warnings: [],
  };
  assert.throws(
    () => prepareHistory(read, 1),
    /too little history: 100 usable frames \(of 1000 read; left out: 900 incident_unjudged\)/,
  );
});
