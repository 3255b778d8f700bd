// One stream's frame order: its newest timestamp and its recent ones, the rule both intakes apply.

/** The fate of a frame for its stream, decided when the frame is committed. */
export type Admission =
  | { status: "accepted"; timestamp: number }
  | { status: "duplicate"; timestamp: number }
  /** A recent timestamp, taken by a frame with other values (two frames within a millisecond). */
  | { status: "collision"; timestamp: number }
  | { status: "out_of_order"; timestamp: number; newest: number };

/**
 * A stream's timestamps: strictly increasing, an exact repeat of one of the last `recentSize`
 * accepted is a duplicate, anything else older is out of order. The single process's windows
 * ({@link StreamWindows}) and the scale-out ingest replica decide with the same instance, so a
 * producer gets the same answer from either. `admit` decides and records in one synchronous step:
 * two requests of one stream in flight at once never both pass against a stale newest.
 *
 * Timestamps are kept to the millisecond, so two frames sent within one (a producer writing
 * microseconds) have the same one. When the caller passes each frame's values checksum, a repeat
 * is a duplicate only if its values are the same too, and a `collision` otherwise; without one,
 * every repeat is a duplicate. Memory: 16 bytes per remembered timestamp.
 */
export class StreamOrder {
  /** The newest accepted timestamp not taken back (-Infinity before the first). */
  newest = Number.NEGATIVE_INFINITY;
  /** In admission order from `#next`, so increasing; NaN: empty or taken back. */
  readonly #recent: Float64Array;
  /** The values checksum of each recent frame (NaN: not given, e.g. stamped at reception). */
  readonly #checksums: Float64Array;
  #next = 0;
  /** The newest timestamp pushed out of `#recent` while kept: the newest before its records. */
  #floor = Number.NEGATIVE_INFINITY;

  constructor(recentSize: number) {
    this.#recent = new Float64Array(recentSize).fill(Number.NaN);
    this.#checksums = new Float64Array(recentSize).fill(Number.NaN);
  }

  /**
   * Decides whether a frame joins the stream and records its timestamp when it does.
   * `timestamp` undefined means "reception time": `now`, bumped past the newest frame so that
   * high-rate producers without timestamps never collide. `checksum` (see `frameChecksum`) tells
   * a repeat of a frame from another frame at the same millisecond.
   */
  admit(timestamp: number | undefined, now: number, checksum?: number): Admission {
    const ts = timestamp ?? Math.max(now, this.newest + 1);
    if (ts > this.newest) {
      this.newest = ts;
      const evicted = this.#recent[this.#next];
      if (!Number.isNaN(evicted)) this.#floor = evicted;
      this.#recent[this.#next] = ts;
      this.#checksums[this.#next] = checksum ?? Number.NaN;
      this.#next = (this.#next + 1) % this.#recent.length;
      return { status: "accepted", timestamp: ts };
    }
    const at = this.#recent.indexOf(ts);
    if (at < 0) return { status: "out_of_order", timestamp: ts, newest: this.newest };
    // NaN never equals: a frame stamped at reception is no frame a client could send again.
    if (checksum === undefined || this.#checksums[at] === checksum) {
      return { status: "duplicate", timestamp: ts };
    }
    return { status: "collision", timestamp: ts };
  }

  /**
   * Takes back an accepted timestamp whose frame was not kept after all (the bus did not
   * acknowledge it): a retry of it is then accepted, not a duplicate. The newest becomes the
   * newest timestamp still kept, never one taken back, in whatever order frames in flight together
   * are taken back (two refused in a bus outage: the first's retry gets in). Exact while the frame
   * is among the last `recentSize` admitted. Past them (more of its stream admitted while it was
   * in flight) it may be the newest before the records, and what came before it is not known:
   * should every record be taken back too, the newest is -Infinity, the retries get in and the
   * worker keeps the order (bus/README.md).
   */
  withdraw(ts: number): void {
    const at = this.#recent.indexOf(ts);
    if (at >= 0) {
      this.#recent[at] = Number.NaN;
      this.#checksums[at] = Number.NaN;
    } else if (ts === this.#floor) {
      this.#floor = Number.NEGATIVE_INFINITY;
    }
    this.newest = this.#newestKept();
  }

  /** The newest record not taken back, else the newest before the records; O(recentSize). */
  #newestKept(): number {
    const size = this.#recent.length;
    for (let back = 1; back <= size; back++) {
      const ts = this.#recent[(this.#next - back + size) % size];
      if (!Number.isNaN(ts)) return ts;
    }
    return this.#floor;
  }
}
