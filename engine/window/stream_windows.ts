// Which frames join a stream (timestamp order, duplicates once, a bound on streams) and each stream's features.
import type { ModelMetadata } from "../../contracts/model.ts";
import {
  StreamFeatures,
  WindowShape,
  type WindowShapeOptions,
} from "../../scoring/window_features.ts";

import { type Admission, StreamOrder } from "./stream_order.ts";

export type { Admission } from "./stream_order.ts";

export interface StreamLimits {
  /** Streams kept at most; the least recently active one is forgotten beyond it (1024). */
  maxStreams?: number;
  /** Accepted timestamps remembered per stream to recognise a repeated frame (64). */
  recentTimestamps?: number;
}

/** The windows' shape (or what makes one), and the limits on streams. */
export type StreamWindowsOptions = (WindowShapeOptions | { shape: WindowShape }) & StreamLimits;

interface StreamState {
  order: StreamOrder;
  features: StreamFeatures;
}

/**
 * The engine's streams. `admit` runs on the request path when a frame is committed: it enforces
 * strictly increasing timestamps per stream (so windows are in timestamp order), turns an exact
 * repeat into a duplicate and an older frame into out-of-order. `push` runs in the batcher: it
 * hands the frame to the stream's {@link StreamFeatures} (window ring, running levels: the
 * scoring layer's part), which writes the window once the stream has `windowSize` frames.
 *
 * Memory: per stream, what its features hold plus `recentTimestamps * 8` bytes, bounded by
 * `maxStreams` (the least recently active stream is forgotten).
 */
export class StreamWindows {
  /** The windows' shape, shared by every stream (another model's, after `adopt`). */
  shape: WindowShape;
  readonly #maxStreams: number;
  readonly #recentSize: number;
  // Map iteration order is insertion order; re-inserting on activity makes the first key the LRU.
  readonly #streams = new Map<string, StreamState>();

  constructor(options: StreamWindowsOptions) {
    const { maxStreams = 1024, recentTimestamps = 64 } = options;
    const check = (name: string, value: number, max: number) => {
      if (!Number.isInteger(value) || value < 1 || value > max) {
        throw new RangeError(`'${name}' must be an integer 1..${max}, got ${value}`);
      }
    };
    check("maxStreams", maxStreams, 1_000_000);
    check("recentTimestamps", recentTimestamps, 4096);
    this.shape = "shape" in options ? options.shape : new WindowShape(options);
    this.#maxStreams = maxStreams;
    this.#recentSize = recentTimestamps;
  }

  /** The windows a model scores: its window size, feature count and running levels. */
  static forModel(
    meta: Pick<ModelMetadata, "window_size" | "n_features" | "baseline">,
    limits: StreamLimits = {},
  ): StreamWindows {
    return new StreamWindows({ ...limits, shape: WindowShape.forModel(meta) });
  }

  get windowSize(): number {
    return this.shape.windowSize;
  }

  get frameSize(): number {
    return this.shape.frameSize;
  }

  /** Streams currently tracked. */
  get streams(): number {
    return this.#streams.size;
  }

  /** The ids of the streams tracked. */
  streamIds(): IterableIterator<string> {
    return this.#streams.keys();
  }

  /**
   * Decides whether a frame joins its stream and records its timestamp when it does.
   * `timestamp` undefined means "reception time": `now`, bumped past the stream's newest frame
   * so that high-rate producers without timestamps never collide.
   */
  admit(streamId: string, timestamp: number | undefined, now: number): Admission {
    return this.#touch(streamId).order.admit(timestamp, now);
  }

  /**
   * Appends an accepted frame to its stream (see {@link StreamFeatures.push}): true once the
   * stream holds a full window, written oldest first into `into` (and the baseline sensors'
   * readings as they arrived into `rawInto`).
   */
  push(
    streamId: string,
    values: Float32Array,
    into: Float32Array,
    rawInto?: Float32Array,
  ): boolean {
    const state = this.#streams.get(streamId) ?? this.#touch(streamId);
    return state.features.push(values, into, rawInto);
  }

  /**
   * Takes another model's window shape between two batches (a hot swap), keeping every stream's
   * ordering state. `carry` (same window size and features): each stream keeps its window; where
   * the running levels differ it is rebuilt by replaying the readings it holds (its last
   * `windowSize` frames as they arrived), so its levels restart from those. `reset`: each stream
   * starts its window afresh (another window size or other features). Returns the streams kept.
   */
  adopt(shape: WindowShape, mode: "carry" | "reset"): number {
    const before = this.shape;
    if (
      mode === "carry" &&
      (shape.windowSize !== before.windowSize || shape.frameSize !== before.frameSize)
    ) {
      throw new RangeError("a window of another size or other features cannot be carried over");
    }
    this.shape = shape;
    const same = mode === "carry" && sameLevels(before, shape);
    for (const state of this.#streams.values()) {
      if (same) continue;
      const old = state.features;
      state.features = new StreamFeatures(shape);
      if (mode === "reset") continue;
      const readings = old.lastReadings();
      const F = shape.frameSize;
      // Replayed into a scratch window: what it writes is never scored.
      const scratch = new Float32Array(shape.windowValues);
      for (let t = 0; t * F < readings.length; t++) {
        state.features.push(readings.subarray(t * F, (t + 1) * F), scratch);
      }
    }
    return this.#streams.size;
  }

  /**
   * Starts a stream's window afresh, keeping its ordering state: its next window is scored once
   * it holds `windowSize` new frames (a machine that stopped and runs again). False for a
   * stream not tracked.
   */
  restart(streamId: string): boolean {
    const state = this.#streams.get(streamId);
    if (!state) return false;
    state.features = new StreamFeatures(this.shape);
    return true;
  }

  #touch(streamId: string): StreamState {
    let state = this.#streams.get(streamId);
    if (state) {
      this.#streams.delete(streamId);
    } else {
      state = {
        order: new StreamOrder(this.#recentSize),
        features: new StreamFeatures(this.shape),
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

/** Whether two shapes apply the same running levels (so a stream's window is valid for both). */
function sameLevels(a: WindowShape, b: WindowShape): boolean {
  const x = a.baseline;
  const y = b.baseline;
  if (!x || !y) return !x && !y;
  return (
    x.alpha === y.alpha &&
    x.span === y.span &&
    x.features.length === y.features.length &&
    x.features.every((f, i) => f === y.features[i])
  );
}
