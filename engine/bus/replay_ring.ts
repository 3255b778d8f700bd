// Where a partition must be read again from for a new owner to rebuild every stream's window.

/**
 * Remembers, per stream, the bus sequences of its last `keep` accepted frames (the frames that
 * rebuild its next window and running levels, `WindowShape.rebuildFrames`), and answers the
 * partition's replay point: the oldest of them across streams. Streams are kept in recency order
 * and bounded like the engine's stream windows (`maxStreams`, least recently active forgotten),
 * so a stream the window store forgot no longer holds the replay point back.
 *
 * `remember` is O(1); `replayPoint` is O(streams), called once per committed batch.
 */
export class ReplayRing {
  readonly #keep: number;
  readonly #maxStreams: number;
  // Map iteration order is insertion order; re-inserting on activity makes the first key the LRU.
  readonly #streams = new Map<string, { seqs: Float64Array; next: number; count: number }>();

  constructor(keep: number, maxStreams = 1024) {
    if (!Number.isInteger(keep) || keep < 0) {
      throw new RangeError(`'keep' must be an integer >= 0, got ${keep}`);
    }
    this.#keep = keep;
    this.#maxStreams = maxStreams;
  }

  get streams(): number {
    return this.#streams.size;
  }

  /** Records that `streamId`'s frame at bus sequence `seq` was accepted into its window. */
  remember(streamId: string, seq: number): void {
    if (this.#keep === 0) return;
    let ring = this.#streams.get(streamId);
    if (ring) {
      this.#streams.delete(streamId);
    } else {
      if (this.#streams.size >= this.#maxStreams) {
        this.#streams.delete(this.#streams.keys().next().value as string);
      }
      ring = { seqs: new Float64Array(this.#keep), next: 0, count: 0 };
    }
    this.#streams.set(streamId, ring);
    ring.seqs[ring.next] = seq;
    ring.next = (ring.next + 1) % this.#keep;
    ring.count = Math.min(this.#keep, ring.count + 1);
  }

  /** The first sequence a new owner must read (0: nothing to rebuild). */
  replayPoint(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const ring of this.#streams.values()) {
      const oldest = ring.count < ring.seqs.length ? ring.seqs[0] : ring.seqs[ring.next];
      if (oldest < min) min = oldest;
    }
    return Number.isFinite(min) ? min : 0;
  }
}
