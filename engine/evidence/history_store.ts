// Keeps each live stream's recent raw frames, within a global memory budget, for an incident's history before onset.

export interface HistoryStoreOptions {
  /** Frames kept per stream (`EVIDENCE_HISTORY_FRAMES`); 0 keeps none. */
  frames: number;
  /** Sensors per frame (the model's `n_features`). */
  features: number;
  /** Bytes all streams' frames may take together (`EVIDENCE_HISTORY_MAX_MB`). */
  maxBytes: number;
}

interface Slot {
  /** `[frames, features]` readings, a ring. */
  values: Float32Array;
  /** Epoch ms of each ring row. */
  times: Float64Array;
  /** Row the next frame goes to. */
  next: number;
  count: number;
}

/** A stream's kept frames `from .. to` (inclusive, oldest first), as `HistoryStore.span` finds them. */
export interface HistorySpan {
  /** Frames in the span. */
  readonly length: number;
  /** Epoch ms of the span's `i`-th frame. */
  time(i: number): number;
  /** Sensor `f`'s reading in the span's `i`-th frame. */
  value(i: number, f: number): number;
}

/**
 * Per stream, a ring of the last `frames` frames, each stream's buffers allocated once
 * (`frames × features × 4` bytes plus 8 per frame) and as many streams as `maxBytes` holds.
 * When a new stream arrives with the budget spent, the stream fed least recently is evicted and
 * its buffers go to the newcomer: a stream's history starts again empty then, so its next alert
 * carries only the frames kept since it came back (and none when the incident's onset is older
 * than those). `record` costs one copy of the frame and a map update; nothing is allocated once
 * the budget's streams exist.
 */
export class HistoryStore {
  readonly frames: number;
  readonly features: number;
  /** Streams the budget holds at once. */
  readonly capacity: number;
  /** Least recently fed first: a `Map` iterates in insertion order, and `record` re-inserts. */
  readonly #slots = new Map<string, Slot>();
  #evictions = 0;

  constructor(options: HistoryStoreOptions) {
    const { frames, features, maxBytes } = options;
    if (!Number.isInteger(frames) || frames < 0)
      throw new RangeError(`'EVIDENCE_HISTORY_FRAMES' must be an integer >= 0, got ${frames}`);
    if (!Number.isInteger(features) || features < 1)
      throw new RangeError(`'features' must be an integer >= 1, got ${features}`);
    this.frames = frames;
    this.features = features;
    const perStream = frames * (features * 4 + 8);
    this.capacity = frames === 0 ? 0 : Math.floor(maxBytes / perStream);
  }

  /** Streams with kept frames now. */
  get streams(): number {
    return this.#slots.size;
  }

  /** Streams evicted so far to make room for others. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Bytes the kept streams' buffers take. */
  get bytes(): number {
    return this.#slots.size * this.frames * (this.features * 4 + 8);
  }

  /** Keeps `values` (one frame, copied) as stream `streamId`'s newest at `timestamp`. */
  record(streamId: string, timestamp: number, values: Float32Array): void {
    if (this.capacity === 0 || values.length < this.features) return;
    let slot = this.#slots.get(streamId);
    if (slot) this.#slots.delete(streamId);
    else slot = this.#admit();
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
    if (!slot || slot.count === 0) return undefined;
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
    };
  }

  /** Kept frames of `streamId` before and including `to`, at most `frames` (see `span`). */
  upTo(streamId: string, to: number): HistorySpan | undefined {
    return this.span(streamId, Number.NEGATIVE_INFINITY, to, true);
  }

  #admit(): Slot {
    if (this.#slots.size >= this.capacity) {
      const [lru, slot] = this.#slots.entries().next().value as [string, Slot];
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
    };
  }
}
