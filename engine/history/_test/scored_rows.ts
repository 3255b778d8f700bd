// Feeds a recorder scored windows as the batcher does: frames into a real HistoryStore, then a ScoredBatch of their rows.

import type { ScoredBatch } from "../../batch/window_scorer.ts";
import { HistoryStore } from "../../evidence/history_store.ts";
import { HistoryRecorder, type RecordedModel } from "../history_recorder.ts";
import { AlertPathIncidents } from "./alert_path_incidents.ts";

/** A deterministic reading of sensor `f` at frame `seq` of a stream: the tests check it back. */
export const reading = (seq: number, f: number) => seq * 1000 + f;

/** A model of `features` sensors named `s0..`. */
export function modelOf(features: number, version = "1"): RecordedModel {
  return {
    name: "m",
    version,
    n_features: features,
    window_size: 5,
    feature_names: Array.from({ length: features }, (_, i) => `s${i}`),
  };
}

export interface Row {
  stream: string;
  seq: number;
  /** Flagged sensors of the window ending at this frame. */
  flagged?: number[];
  /** The frame's readings (default: `reading(seq, f)`). */
  values?: Float32Array;
}

/** Each recorder's alert path, when a test does not give one: the state goes on across `feed` calls. */
const alertPaths = new WeakMap<HistoryRecorder, AlertPathIncidents>();

/** The alert path `feed` uses for `recorder` by default (a real tracker, {@link TEST_TRACKER}). */
export function alertPathOf(recorder: HistoryRecorder, model: RecordedModel): AlertPathIncidents {
  let path = alertPaths.get(recorder);
  if (!path) {
    path = new AlertPathIncidents(model);
    alertPaths.set(recorder, path);
  }
  return path;
}

/**
 * Records `rows` (one window each, newest frame `reading(seq, f)` at timestamp `t0 + seq * 1000`)
 * in batches of `batchSize`, through a real frame store, into `recorder`, each batch first
 * through the alert path's incident state (`incidents`, default {@link alertPathOf}; `"frame"`:
 * `ALERT_MODE=frame`, no incidents).
 */
export function feed(
  recorder: HistoryRecorder,
  model: RecordedModel,
  rows: Row[],
  options: {
    t0?: number;
    batchSize?: number;
    store?: HistoryStore;
    incidents?: AlertPathIncidents | "frame";
  } = {},
): HistoryStore {
  const { t0 = 1_700_000_000_000, batchSize = 16 } = options;
  const F = model.n_features;
  const store =
    options.store ??
    new HistoryStore({ frames: Math.max(32, batchSize), features: F, maxBytes: 2 ** 31 });
  for (let i = 0; i < rows.length; i += batchSize) {
    const part = rows.slice(i, i + batchSize);
    const flagged: number[] = [];
    const flaggedFrom = new Uint32Array(part.length + 1);
    part.forEach((row, r) => {
      const frame = row.values ?? Float32Array.from({ length: F }, (_, f) => reading(row.seq, f));
      store.record(row.stream, t0 + row.seq * 1000, frame);
      flagged.push(...(row.flagged ?? []));
      flaggedFrom[r + 1] = flagged.length;
    });
    const batch: ScoredBatch = {
      size: part.length,
      nFeatures: F,
      scores: new Float32Array(part.length * F),
      severity: undefined,
      statistic: undefined,
      flagged: Int32Array.from(flagged),
      flaggedFrom,
      evidenceFrom: new Uint32Array(part.length + 1),
      windows: new Float32Array(0),
      levels: new Float32Array(0),
      streamIds: part.map((r) => r.stream),
      timestamps: Float64Array.from(part, (r) => t0 + r.seq * 1000),
      receivedAt: new Float64Array(part.length),
      spans: part.map(() => undefined),
      inferenceMs: 0,
      completedAt: 0,
    };
    const incidents = options.incidents ?? alertPathOf(recorder, model);
    recorder.scored(batch, store, model, incidents === "frame" ? undefined : incidents.of(batch));
  }
  return store;
}

/** `n` quiet windows of `stream` from `from`. */
export const quiet = (stream: string, from: number, n: number): Row[] =>
  Array.from({ length: n }, (_, i) => ({ stream, seq: from + i }));

/**
 * The recorder of the crash test, in the victim process and in the test reading after it:
 * every frame kept, short runs.
 */
export function crashTestRecorder(dir: string, model: RecordedModel): HistoryRecorder {
  return new HistoryRecorder({ dir, model, maxBytes: 2 ** 40, everyN: 1, runFrames: 10 });
}
