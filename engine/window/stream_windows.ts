// Per-stream sliding windows (stride 1), the model's running levels, and the ordering/duplicate rules that feed them.
import type { ModelMetadata } from "../../contracts/model.ts";
import {
  checkSpec,
  LevelBaseline,
  type LevelBaselineSpec,
} from "../../models/featurewise/level_baseline.ts";

/** The fate of a frame for its stream, decided when the frame is committed. */
export type Admission =
  | { status: "accepted"; timestamp: number }
  | { status: "duplicate"; timestamp: number }
  | { status: "out_of_order"; timestamp: number; newest: number };

export interface StreamWindowsOptions {
  /** Frames per window (the model's `window_size`). */
  windowSize: number;
  /** Values per frame (the model's feature count). */
  frameSize: number;
  /** Streams kept at most; the least recently active one is forgotten beyond it (1024). */
  maxStreams?: number;
  /** Accepted timestamps remembered per stream to recognise a repeated frame (64). */
  recentTimestamps?: number;
  /** The model's running levels (metadata `baseline`): applied to each stream's frames in order. */
  baseline?: LevelBaselineSpec;
}

interface StreamState {
  newest: number;
  recent: Float64Array; // ring of recently accepted timestamps
  recentNext: number;
  rows: Float32Array | undefined; // windowSize frames, allocated at the stream's first frame
  nextRow: number;
  frames: number;
  baseline: LevelBaseline | undefined;
  raw: Float32Array | undefined; // windowSize rows of the baseline sensors' readings as they arrived
}

/**
 * Sliding windows per stream. `admit` runs on the request path when a frame is committed: it
 * enforces strictly increasing timestamps per stream (so windows are in timestamp order), turns
 * an exact repeat into a duplicate and an older frame into out-of-order. `push` runs in the
 * batcher: it copies the frame into the stream's circular buffer of `windowSize` rows and, once
 * the stream has that many frames, writes the window oldest-first into the batch tensor.
 *
 * With a `baseline` (the model's running levels), each frame is transformed as it joins its
 * stream (`LevelBaseline.apply`): the window holds what the model sees, and a side ring the
 * baseline sensors' readings as they arrived (for alerts).
 *
 * Memory: `(windowSize * (frameSize + b) + span * b) * 4` bytes per stream (`b` baseline sensors),
 * bounded by `maxStreams`.
 */
export class StreamWindows {
  readonly windowSize: number;
  readonly frameSize: number;
  readonly #maxStreams: number;
  readonly #recentSize: number;
  readonly #baseline: LevelBaselineSpec | undefined;
  /** Per feature, its position among the baseline sensors, or -1. */
  readonly baselineIndex: Int32Array;
  // Map iteration order is insertion order; re-inserting on activity makes the first key the LRU.
  readonly #streams = new Map<string, StreamState>();

  constructor(options: StreamWindowsOptions) {
    const { windowSize, frameSize, maxStreams = 1024, recentTimestamps = 64, baseline } = options;
    const check = (name: string, value: number, max: number) => {
      if (!Number.isInteger(value) || value < 1 || value > max) {
        throw new RangeError(`'${name}' must be an integer 1..${max}, got ${value}`);
      }
    };
    check("windowSize", windowSize, 1024);
    check("frameSize", frameSize, 10_000_000);
    check("maxStreams", maxStreams, 1_000_000);
    check("recentTimestamps", recentTimestamps, 4096);
    this.windowSize = windowSize;
    this.frameSize = frameSize;
    this.#maxStreams = maxStreams;
    this.#recentSize = recentTimestamps;
    if (baseline) checkSpec(baseline, frameSize);
    this.#baseline = baseline?.features.length ? baseline : undefined;
    this.baselineIndex = new Int32Array(this.#baseline ? frameSize : 0).fill(-1);
    this.#baseline?.features.forEach((f, i) => {
      this.baselineIndex[f] = i;
    });
  }

  /** The windows a model scores: its window size, feature count and running levels. */
  static forModel(
    meta: Pick<ModelMetadata, "window_size" | "n_features" | "baseline">,
    options: Pick<StreamWindowsOptions, "maxStreams" | "recentTimestamps"> = {},
  ): StreamWindows {
    return new StreamWindows({
      ...options,
      windowSize: meta.window_size,
      frameSize: meta.n_features,
      baseline: meta.baseline,
    });
  }

  /**
   * Frames a stream needs, read again in order, to produce its next window exactly as before:
   * the window's other frames and the readings its running levels are taken over.
   */
  get rebuildFrames(): number {
    return this.windowSize - 1 + (this.#baseline?.span ?? 0);
  }

  /** Baseline sensors per frame (0 without a baseline). */
  get baselineSize(): number {
    return this.#baseline?.features.length ?? 0;
  }

  /** Streams currently tracked. */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Decides whether a frame joins its stream and records its timestamp when it does.
   * `timestamp` undefined means "reception time": `now`, bumped past the stream's newest frame
   * so that high-rate producers without timestamps never collide.
   */
  admit(streamId: string, timestamp: number | undefined, now: number): Admission {
    const state = this.#touch(streamId);
    const ts = timestamp ?? Math.max(now, state.newest + 1);
    if (ts > state.newest) {
      state.newest = ts;
      state.recent[state.recentNext] = ts;
      state.recentNext = (state.recentNext + 1) % state.recent.length;
      return { status: "accepted", timestamp: ts };
    }
    if (state.recent.includes(ts)) return { status: "duplicate", timestamp: ts };
    return { status: "out_of_order", timestamp: ts, newest: state.newest };
  }

  /**
   * Appends an accepted frame to its stream. Returns true and writes the window (oldest frame
   * first, `windowSize * frameSize` values) into `into` once the stream holds a full window, and
   * with a baseline the baseline sensors' readings as they arrived (`windowSize * baselineSize`,
   * oldest first) into `rawInto` when given.
   */
  push(
    streamId: string,
    values: Float32Array,
    into: Float32Array,
    rawInto?: Float32Array,
  ): boolean {
    const state = this.#streams.get(streamId) ?? this.#touch(streamId);
    const size = this.frameSize;
    state.rows ??= new Float32Array(this.windowSize * size);
    const row = state.rows.subarray(state.nextRow * size, (state.nextRow + 1) * size);
    row.set(values.subarray(0, size));
    const nb = this.baselineSize;
    if (nb > 0) {
      state.baseline ??= new LevelBaseline(this.#baseline as LevelBaselineSpec);
      state.raw ??= new Float32Array(this.windowSize * nb);
      state.baseline.apply(row, state.raw.subarray(state.nextRow * nb, (state.nextRow + 1) * nb));
    }
    state.nextRow = (state.nextRow + 1) % this.windowSize;
    state.frames++;
    if (state.frames < this.windowSize) return false;
    // After the write, nextRow is the oldest row: copy in at most two contiguous pieces.
    copyRing(state.rows, state.nextRow * size, into);
    if (nb > 0 && rawInto) copyRing(state.raw as Float32Array, state.nextRow * nb, rawInto);
    return true;
  }

  #touch(streamId: string): StreamState {
    let state = this.#streams.get(streamId);
    if (state) {
      this.#streams.delete(streamId);
    } else {
      state = {
        newest: Number.NEGATIVE_INFINITY,
        recent: new Float64Array(this.#recentSize).fill(Number.NaN),
        recentNext: 0,
        rows: undefined,
        nextRow: 0,
        frames: 0,
        baseline: undefined,
        raw: undefined,
      };
      if (this.#streams.size >= this.#maxStreams) {
        const oldest = this.#streams.keys().next().value as string;
        this.#streams.delete(oldest);
      }
    }
    this.#streams.set(streamId, state);
    return state;
  }
}

/** Copies ring `rows` into `into` oldest first, `split` being the offset of the oldest value. */
function copyRing(rows: Float32Array, split: number, into: Float32Array): void {
  into.set(rows.subarray(split), 0);
  if (split > 0) into.set(rows.subarray(0, split), rows.length - split);
}
