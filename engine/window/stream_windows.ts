// Which frames join a stream (timestamp order, duplicates once, a bound on streams) and each stream's features.
import type { EngineConfig } from "../../contracts/config.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import {
  StreamFeatures,
  WindowShape,
  type WindowShapeOptions,
} from "../../scoring/window_features.ts";

import { type Admission as OrderAdmission, StreamOrder } from "./stream_order.ts";

/** The fate of a frame: its stream's order decides, unless the stream has no place (`maxStreams`). */
export type Admission =
  | OrderAdmission
  | { status: "too_many_streams"; timestamp: number; maxStreams: number };

export interface StreamLimits {
  /**
   * Streams kept at most (`MAX_STREAMS`, 1024). Beyond it a new stream takes the place of the
   * least recently active one only if that one has sent nothing for `idleMs`; otherwise the new
   * stream's frame is refused (`too_many_streams`), so the streams being scored keep their windows
   * instead of every stream losing its window to the next one in turn.
   */
  maxStreams?: number;
  /**
   * How long a stream must have been silent to give its place to a new one (no limit: always),
   * and the silence that, with {@link SILENT_STEPS} of its interval, makes a gap an outage that
   * does not enter the stream's interval (no limit: every gap enters it).
   */
  idleMs?: number;
  /** Accepted timestamps remembered per stream to recognise a repeated frame (64). */
  recentTimestamps?: number;
}

/** The engine's limits on streams: `MAX_STREAMS`, and a place freed after `INCIDENT_STALE_MS` of silence. */
export const streamLimitsOf = (
  config: Pick<EngineConfig, "MAX_STREAMS" | "INCIDENT_STALE_MS">,
): StreamLimits => ({ maxStreams: config.MAX_STREAMS, idleMs: config.INCIDENT_STALE_MS });

/** How many of its own reception intervals a stream must also be quiet to count as silent. */
export const SILENT_STEPS = 10;

/**
 * Whether a stream quiet for `quiet` ms is silent: longer than `idleMs` (`INCIDENT_STALE_MS`) and
 * than {@link SILENT_STEPS} of its reception interval `step`.
 */
export const silentFor = (quiet: number, idleMs: number, step: number): boolean =>
  quiet > idleMs && quiet > SILENT_STEPS * step;

/** How fast a stream's longest recent reception interval fades (its `step`): an hour. */
const STEP_FADE_MS = 3_600_000;

/** The windows' shape (or what makes one), and the limits on streams. */
export type StreamWindowsOptions = (WindowShapeOptions | { shape: WindowShape }) & StreamLimits;

interface StreamState {
  order: StreamOrder;
  /** When it last had a frame admitted (the `now` of `admit`). */
  seenAt: number;
  /**
   * Its reception interval, the longest of late (each new interval, or the last longest fading
   * with an hour's time constant; 0 until a second frame): a producer that sends in bursts every
   * few minutes has that gap as its step, not the milliseconds inside a burst. An outage (a gap
   * after which the stream was silent by {@link silentFor}, once it has sent for `idleMs`) does
   * not enter it, so the stream's next outage is listed as soon as its first was.
   */
  step: number;
  /** When its current run began: its first frame, or the first after an outage. */
  runFrom: number;
  features: StreamFeatures;
}

/** A stream that has sent nothing for a while, as `GET /stats` lists it (`silent`). */
export interface SilentStream {
  stream_id: string;
  /** When its last frame was accepted (this engine's clock, ISO); refused frames do not count. */
  last_accepted_at: string;
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
  readonly #idleMs: number;
  /** Frames refused because every place was held by a stream active within `idleMs`. */
  refused = 0;
  readonly #recentSize: number;
  // Map iteration order is insertion order; re-inserting on activity makes the first key the LRU.
  readonly #streams = new Map<string, StreamState>();

  constructor(options: StreamWindowsOptions) {
    const { maxStreams = 1024, recentTimestamps = 64, idleMs = 0 } = options;
    const check = (name: string, value: number, max: number) => {
      if (!Number.isInteger(value) || value < 1 || value > max) {
        throw new RangeError(`'${name}' must be an integer 1..${max}, got ${value}`);
      }
    };
    check("maxStreams", maxStreams, 1_000_000);
    check("recentTimestamps", recentTimestamps, 4096);
    this.shape = "shape" in options ? options.shape : new WindowShape(options);
    this.#maxStreams = maxStreams;
    this.#idleMs = idleMs;
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
   * so that high-rate producers without timestamps never collide. `checksum`, the frame's values
   * checksum, tells a repeat of a frame from another frame at the same millisecond
   * ({@link StreamOrder.admit}).
   *
   * Only an accepted frame makes its stream the most recently active one: a refused frame
   * (out of order, a collision) changes nothing, and a duplicate adds nothing to the window and
   * was counted as activity when it was first accepted, so a client stuck sending one frame
   * again keeps no stream's place.
   */
  admit(
    streamId: string,
    timestamp: number | undefined,
    now: number,
    checksum?: number,
  ): Admission {
    const known = this.#streams.get(streamId);
    // A new stream's first frame is always accepted: its place is taken here.
    const state = known ?? this.#touch(streamId, now);
    if (!state) {
      this.refused++;
      return {
        status: "too_many_streams",
        timestamp: timestamp ?? now,
        maxStreams: this.#maxStreams,
      };
    }
    const admission = state.order.admit(timestamp, now, checksum);
    if (admission.status === "accepted" && known) {
      this.#touch(streamId);
      const interval = Math.max(0, now - state.seenAt);
      if (this.#outage(state, interval)) {
        // The stream was dark, which says nothing of how it is sampled: its interval stays.
        state.runFrom = now;
      } else {
        state.step = Math.max(interval, state.step * Math.exp(-interval / STEP_FADE_MS));
      }
      state.seenAt = now;
    }
    return admission;
  }

  /**
   * Whether a gap of `interval` before the stream's frame was an outage, which does not enter its
   * interval: the stream was silent by {@link silentFor} during it, judged by an interval it has
   * learnt (not its first: a stream sampled every 10 minutes, beyond `idleMs`, has that as its
   * step) over a run of at least `idleMs` before it. A gateway's first burst of buffered frames
   * lasts less, so the gap to its second burst becomes its interval, as a slow stream's first
   * does; a stream that goes dark before it has sent for `idleMs` has that gap taken as its
   * interval too, until it fades.
   */
  #outage(state: StreamState, interval: number): boolean {
    return (
      this.#idleMs > 0 &&
      state.step > 0 &&
      state.seenAt - state.runFrom >= this.#idleMs &&
      silentFor(interval, this.#idleMs, state.step)
    );
  }

  /**
   * The streams that have had no frame accepted for longer than `idleMs` at `now` (reception
   * time, the clock `admit` was given) and for more than {@link SILENT_STEPS} of their own
   * reception intervals (a stream sampled every 10 minutes, or sent in bursts, is not silent
   * between its frames), longest silent first: the `max` most recently silent (a line that has
   * just gone dark is never cut off by old ones). Refused frames do not count: a
   * producer whose every frame is refused (a clock set back) is listed too. A line that went dark without sending a stop: the engine holds
   * its window and scores nothing of it. O(silent streams): the streams are kept in order of
   * their last frame.
   */
  silent(now: number, idleMs: number, max = 256): SilentStream[] {
    const out: SilentStream[] = [];
    for (const [streamId, state] of this.#streams) {
      const quiet = now - state.seenAt;
      if (!(quiet > idleMs)) break;
      if (silentFor(quiet, idleMs, state.step) && Number.isFinite(state.seenAt)) {
        out.push({ stream_id: streamId, last_accepted_at: new Date(state.seenAt).toISOString() });
      }
    }
    return out.length > max ? out.slice(-max) : out;
  }

  /** Whether the stream is held now (it had a frame admitted and was not forgotten since). */
  knows(streamId: string): boolean {
    return this.#streams.has(streamId);
  }

  /**
   * Each held stream that had a frame admitted: when (`seenAt`, the clock `admit` was given) and
   * its reception interval (`step`), least recently active first; what {@link SeenStreams} keeps
   * across restarts.
   */
  *lastSeen(): IterableIterator<{ streamId: string; seenAt: number; step: number }> {
    for (const [streamId, state] of this.#streams) {
      if (Number.isFinite(state.seenAt)) yield { streamId, seenAt: state.seenAt, step: state.step };
    }
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
    const state = this.#streams.get(streamId) ?? (this.#touch(streamId) as StreamState);
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

  /**
   * The stream's state, made the most recently active. A new stream at the limit takes the least
   * recently active one's place when that one has been silent for `idleMs` at `now`, and is
   * refused (undefined) otherwise; without `now` (a frame already admitted) it always takes it.
   */
  #touch(streamId: string, now?: number): StreamState | undefined {
    let state = this.#streams.get(streamId);
    if (state) {
      this.#streams.delete(streamId);
    } else {
      if (this.#streams.size >= this.#maxStreams) {
        const [oldest, held] = this.#streams.entries().next().value as [string, StreamState];
        if (now !== undefined && now - held.seenAt < this.#idleMs) return undefined;
        this.#streams.delete(oldest);
      }
      state = {
        order: new StreamOrder(this.#recentSize),
        seenAt: now ?? Number.NEGATIVE_INFINITY,
        step: 0,
        runFrom: now ?? Number.NEGATIVE_INFINITY,
        features: new StreamFeatures(this.shape),
      };
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
