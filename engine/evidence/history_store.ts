// Keeps each live stream's recent raw frames, within a global memory budget, for an incident's history before onset.

export interface HistoryStoreOptions {
  /** Frames kept per stream (`EVIDENCE_HISTORY_FRAMES`); 0 keeps none. */
  frames: number;
  /** Sensors per frame (the model's `n_features`). */
  features: number;
  /** Bytes all streams' frames may take together (`EVIDENCE_HISTORY_MAX_MB`). */
  maxBytes: number;
  /**
   * How long (ms) a stream must go unfed before a new stream may take its ring; default
   * `frames × 1000`, the ring's span at 1 Hz (the pace `EVIDENCE_HISTORY_FRAMES` is sized for).
   */
  idleMs?: number;
  /** Monotonic milliseconds that `idleMs` is measured in (default `performance.now`). */
  clock?: () => number;
  /**
   * Rows of the one ring shared by streams without their own (default 64, the engine's
   * `INFERENCE_BATCH_SIZE`): their newest frames, kept until their window is scored.
   */
  sharedFrames?: number;
}

interface Slot {
  /** `[frames, features]` readings, a ring. */
  values: Float32Array;
  /** Epoch ms of each ring row. */
  times: Float64Array;
  /** Row the next frame goes to. */
  next: number;
  count: number;
  /** `clock()` when it was last fed. */
  fedAt: number;
}

/** The newest frames of streams without a ring of their own, whichever stream sent them. */
interface Shared {
  values: Float32Array;
  times: Float64Array;
  streams: (string | undefined)[];
  next: number;
}

/** Where the history budget stands (`GET /stats` `evidence`; several stores summed). */
export interface HistoryReport {
  /** Streams with a ring of their own now. */
  streams: number;
  /** Streams the budget holds at once (0: `EVIDENCE_HISTORY_MAX_MB` is below one ring). */
  capacity: number;
  /** Bytes the rings and the shared ring take. */
  bytes: number;
  /** Frames of streams without a ring so far (their alerts carry no history). */
  ringless: number;
  /** Idle streams whose ring went to another so far. */
  evictions: number;
}

/** What a warning about the budget says (see `HistoryStore.shortfall`). */
export interface HistoryShortfall {
  frames: number;
  capacity: number;
  streams: number;
  /** Frames kept without a ring since the previous warning, and in all. */
  ringless_since: number;
  ringless: number;
  evictions: number;
}

/** Least time (ms) between two warnings that streams go without history. */
const SHORTFALL_MS = 60_000;

/** The stores' reports summed (each model its own store). */
export function historyReport(stores: Iterable<HistoryStore>): HistoryReport {
  const sum: HistoryReport = { streams: 0, capacity: 0, bytes: 0, ringless: 0, evictions: 0 };
  for (const store of stores) {
    const r = store.report();
    for (const key of Object.keys(sum) as (keyof HistoryReport)[]) sum[key] += r[key];
  }
  return sum;
}

/** A stream's kept frames `from .. to` (inclusive, oldest first), as `HistoryStore.span` finds them. */
export interface HistorySpan {
  /** Frames in the span. */
  readonly length: number;
  /** Epoch ms of the span's `i`-th frame. */
  time(i: number): number;
  /** Sensor `f`'s reading in the span's `i`-th frame. */
  value(i: number, f: number): number;
  /** The span's `i`-th frame, every sensor: a view on the store, valid until its next record. */
  frame(i: number): Float32Array;
}

/**
 * Per stream, a ring of the last `frames` frames, each stream's buffers allocated once
 * (`frames × features × 4` bytes plus 8 per frame) and as many streams as `maxBytes` holds.
 * A stream keeps its ring for as long as it is fed. A new stream arriving with the budget spent
 * takes the ring of the stream fed least recently only when that one has gone unfed for longer
 * than `idleMs` (its history starts again empty when it comes back); otherwise the newcomer goes
 * without, and its alerts carry no history, until a ring falls idle. So with more live streams
 * than the budget holds, the first ones keep whole histories rather than every stream losing its
 * ring before its next frame. Frames of streams without a ring go to one ring of `sharedFrames`
 * rows that they share, taken from the budget first (when a stream's ring still fits beside it)
 * and allocated when the first such frame comes: only `span` of that one frame finds it there
 * (the training recorder copies a scored window's newest frame), never a history. `record`
 * costs one copy of the frame, a clock read and a map update; nothing is allocated once the
 * budget's streams exist.
 */
export class HistoryStore {
  readonly frames: number;
  readonly features: number;
  /** Streams the budget holds at once. */
  readonly capacity: number;
  /** How long a stream goes unfed before its ring may go to another. */
  readonly idleMs: number;
  /** Rows of the ring streams without their own share (0: none). */
  readonly sharedFrames: number;
  /** Least recently fed first: a `Map` iterates in insertion order, and `record` re-inserts. */
  readonly #slots = new Map<string, Slot>();
  readonly #clock: () => number;
  #shared: Shared | undefined;
  #evictions = 0;
  #ringless = 0;
  /** When (`shortfall`'s `now`) the last warning was said, and the ringless count then. */
  #told: { at: number; ringless: number } | undefined;

  constructor(options: HistoryStoreOptions) {
    const { frames, features, maxBytes } = options;
    if (!Number.isInteger(frames) || frames < 0)
      throw new RangeError(`'EVIDENCE_HISTORY_FRAMES' must be an integer >= 0, got ${frames}`);
    if (!Number.isInteger(features) || features < 1)
      throw new RangeError(`'features' must be an integer >= 1, got ${features}`);
    const idleMs = options.idleMs ?? frames * 1000;
    if (!(idleMs >= 0 && idleMs <= Number.MAX_SAFE_INTEGER))
      throw new RangeError(`'idleMs' must be a number >= 0, got ${idleMs}`);
    this.frames = frames;
    this.features = features;
    this.idleMs = idleMs;
    this.#clock = options.clock ?? (() => performance.now());
    const shared = options.sharedFrames ?? 64;
    if (!Number.isInteger(shared) || shared < 0)
      throw new RangeError(`'sharedFrames' must be an integer >= 0, got ${shared}`);
    const row = features * 4 + 8;
    const perStream = frames * row;
    const rings = frames === 0 ? 0 : Math.floor(maxBytes / perStream);
    const beside = Math.floor((maxBytes - shared * row) / perStream);
    // The shared ring only where a stream's own ring still fits beside it.
    this.sharedFrames = rings > 0 && beside > 0 ? shared : 0;
    this.capacity = this.sharedFrames > 0 ? beside : rings;
  }

  /** Streams with kept frames now. */
  get streams(): number {
    return this.#slots.size;
  }

  /** Idle streams whose ring went to another so far. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Frames of streams without a ring (none was idle) so far: kept only in the shared ring. */
  get ringless(): number {
    return this.#ringless;
  }

  /** Bytes the kept streams' buffers and the shared ring take. */
  get bytes(): number {
    const rows = this.#slots.size * this.frames + (this.#shared ? this.sharedFrames : 0);
    return rows * (this.features * 4 + 8);
  }

  /** Where the budget stands, for `GET /stats`. */
  report(): HistoryReport {
    return {
      streams: this.streams,
      capacity: this.capacity,
      bytes: this.bytes,
      ringless: this.#ringless,
      evictions: this.#evictions,
    };
  }

  /**
   * What to warn about, when anything and at most once a minute of `now` (epoch ms): history
   * asked for (`frames` > 0) with a budget below one ring, or frames of streams kept without a
   * ring since the last warning. Otherwise the shortfall is silent: those alerts just carry no
   * history. The store keeps when it last said so, so the alert pipelines that share it (a
   * worker's partitions) say it once between them.
   */
  shortfall(now: number): HistoryShortfall | undefined {
    const told = this.#told;
    if (told && now - told.at < SHORTFALL_MS) return undefined;
    const since = this.#ringless - (told?.ringless ?? 0);
    // A budget below one ring does not change: said once.
    const noRoom = this.frames > 0 && this.capacity === 0 && !told;
    if (since === 0 && !noRoom) return undefined;
    this.#told = { at: now, ringless: this.#ringless };
    return {
      frames: this.frames,
      capacity: this.capacity,
      streams: this.streams,
      ringless_since: since,
      ringless: this.#ringless,
      evictions: this.#evictions,
    };
  }

  /**
   * Keeps `values` (one frame, copied) as stream `streamId`'s newest at `timestamp`; a frame not
   * newer than the newest kept is left out.
   */
  record(streamId: string, timestamp: number, values: Float32Array): void {
    if (this.capacity === 0 || values.length < this.features) return;
    const now = this.#clock();
    let slot = this.#slots.get(streamId);
    // Kept in stream order: a frame not newer than the newest kept is one seen before (a worker
    // that takes a partition back replays frames it already kept).
    if (
      slot &&
      slot.count > 0 &&
      timestamp <= slot.times[(slot.next - 1 + this.frames) % this.frames]
    ) {
      return;
    }
    if (slot) this.#slots.delete(streamId);
    else {
      slot = this.#admit(now);
      if (!slot) {
        this.#ringless++;
        this.#share(streamId, timestamp, values);
        return;
      }
    }
    slot.fedAt = now;
    this.#slots.set(streamId, slot);
    const F = this.features;
    slot.values.set(values.subarray(0, F), slot.next * F);
    slot.times[slot.next] = timestamp;
    slot.next = (slot.next + 1) % this.frames;
    if (slot.count < this.frames) slot.count++;
  }

  /** Forgets a stream (it left, or its model changed features). */
  forget(streamId: string): void {
    this.#slots.delete(streamId);
  }

  /**
   * The kept frames of `streamId` from the one at `from` to the one at `to` (epoch ms, both
   * kept), or `undefined` when either is no longer kept (never seen, evicted, or scrolled out).
   * `from` may also be older than every kept frame with `clip`: the span then starts at the
   * oldest kept one.
   */
  span(streamId: string, from: number, to: number, clip = false): HistorySpan | undefined {
    const slot = this.#slots.get(streamId);
    if (!slot) return from === to ? this.#sharedFrame(streamId, to) : undefined;
    if (slot.count === 0) return undefined;
    const { frames: N, features: F } = this;
    const oldest = (slot.next - slot.count + N) % N;
    const row = (i: number) => (oldest + i) % N;
    // Frames are kept in stream order: search back from the newest (alerts are about recent ones).
    let end = -1;
    for (let i = slot.count - 1; i >= 0; i--) {
      const t = slot.times[row(i)];
      if (t === to) {
        end = i;
        break;
      }
      if (t < to) return undefined;
    }
    if (end < 0) return undefined;
    let start = -1;
    for (let i = end; i >= 0; i--) {
      const t = slot.times[row(i)];
      if (t === from) {
        start = i;
        break;
      }
      if (t < from) break;
    }
    if (start < 0) {
      if (!clip || slot.times[row(0)] < from) return undefined;
      start = 0;
    }
    const { values, times } = slot;
    return {
      length: end - start + 1,
      time: (i) => times[row(start + i)],
      value: (i, f) => values[row(start + i) * F + f],
      frame: (i) => values.subarray(row(start + i) * F, (row(start + i) + 1) * F),
    };
  }

  /** Kept frames of `streamId` before and including `to`, at most `frames` (see `span`). */
  upTo(streamId: string, to: number): HistorySpan | undefined {
    return this.span(streamId, Number.NEGATIVE_INFINITY, to, true);
  }

  #share(streamId: string, timestamp: number, values: Float32Array): void {
    const rows = this.sharedFrames;
    if (rows === 0) return;
    const F = this.features;
    this.#shared ??= {
      values: new Float32Array(rows * F),
      times: new Float64Array(rows),
      streams: new Array(rows),
      next: 0,
    };
    const s = this.#shared;
    s.values.set(values.subarray(0, F), s.next * F);
    s.times[s.next] = timestamp;
    s.streams[s.next] = streamId;
    s.next = (s.next + 1) % rows;
  }

  /** Stream `streamId`'s frame at `to` in the shared ring, newest first: O(`sharedFrames`). */
  #sharedFrame(streamId: string, to: number): HistorySpan | undefined {
    const s = this.#shared;
    if (!s) return undefined;
    const rows = this.sharedFrames;
    const F = this.features;
    for (let k = 1; k <= rows; k++) {
      const row = (s.next - k + rows) % rows;
      if (s.streams[row] !== streamId || s.times[row] !== to) continue;
      return {
        length: 1,
        time: () => to,
        value: (_, f) => s.values[row * F + f],
        frame: () => s.values.subarray(row * F, (row + 1) * F),
      };
    }
    return undefined;
  }

  /** A ring for a new stream: a fresh one within the budget, else an idle stream's, else none. */
  #admit(now: number): Slot | undefined {
    if (this.#slots.size >= this.capacity) {
      // The least recently fed is the first entry: if it is not idle, no stream is (O(1)).
      const [lru, slot] = this.#slots.entries().next().value as [string, Slot];
      if (now - slot.fedAt <= this.idleMs) return undefined;
      this.#slots.delete(lru);
      this.#evictions++;
      slot.next = 0;
      slot.count = 0;
      return slot;
    }
    return {
      values: new Float32Array(this.frames * this.features),
      times: new Float64Array(this.frames),
      next: 0,
      count: 0,
      fedAt: now,
    };
  }
}
