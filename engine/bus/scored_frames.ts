// Drops the frames of a partition that no owner reads again (below its committed replay point), throttled.
import type { Logger } from "../../telemetry/logger.ts";
import type { NatsBus } from "./nats_bus.ts";

/**
 * Purges per partition at most this often: each is a request the server answers by walking the
 * subject's messages, and a partition committed every 100 ms needs no purge that often. The
 * stream must hold what one interval brings beside the unscored and replay frames.
 */
export const PURGE_EVERY_MS = 1000;

interface PartitionPurge {
  /** Every frame below this sequence is gone (as far as this worker knows). */
  below: number;
  /** The newest committed replay point: the frames below it may go. */
  wanted: number;
  /** `performance.now()` of the last purge sent. */
  sentAt: number;
  running: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The stream keeps frames after scoring (limits retention), so a new owner can re-read a
 * partition from its committed replay point; everything below that point is read by nobody
 * again. After each commit the owner hands the partition's replay point here, and its subject is
 * purged below it (`jsm.streams.purge(stream, { filter, seq })`, at most every
 * {@link PURGE_EVERY_MS} per partition, the last point of a burst after the interval), so the
 * stream's byte bound covers only frames not yet scored and the replay frames, not a day of
 * scored ones. A purge that fails is warned of once per outage and tried again at the next
 * commit. Safe after the lease is lost too: the point was committed, and a new owner reads from
 * it or later. The server keeps message ids for the duplicate window across a purge.
 *
 * @example
 * const scored = new ScoredFrames({ bus, log });
 * if (await leases.commit(p, seq, replay, lag)) scored.committed(p, replay || seq + 1);
 */
export class ScoredFrames {
  readonly #bus: NatsBus;
  readonly #log: Logger;
  readonly #everyMs: number;
  readonly #parts = new Map<number, PartitionPurge>();
  #failing = false;
  #closed = false;
  /** Frames purged since start (the worker's `/stats`). */
  purged = 0;

  readonly #onError: ((error: unknown) => void) | undefined;

  constructor(options: {
    bus: NatsBus;
    log: Logger;
    everyMs?: number;
    /** Hears of a failed purge (a stream the server lost is made again: `BusRepair`). */
    onError?: (error: unknown) => void;
  }) {
    this.#bus = options.bus;
    this.#log = options.log;
    this.#everyMs = options.everyMs ?? PURGE_EVERY_MS;
    this.#onError = options.onError;
  }

  /** Partition `partition` is committed and is re-read from `keepFrom` on: frames below it go. */
  committed(partition: number, keepFrom: number): void {
    let part = this.#parts.get(partition);
    if (!part) {
      // Nothing is below sequence 1, and a purge "below 1" would be none at all: the server
      // (2.9) takes `seq` 1 as no bound and purges the whole subject.
      part = {
        below: 1,
        wanted: 0,
        sentAt: Number.NEGATIVE_INFINITY,
        running: false,
        timer: undefined,
      };
      this.#parts.set(partition, part);
    }
    if (keepFrom > part.wanted) part.wanted = keepFrom;
    this.#next(partition, part);
  }

  /**
   * Forgets partition `partition` (handed over or lost): a purge point waiting for its interval
   * is dropped, so none is sent once another owner reads it, or into a stream made again after
   * the server lost it, whose sequences start over.
   */
  forget(partition: number): void {
    clearTimeout(this.#parts.get(partition)?.timer);
    this.#parts.delete(partition);
  }

  /** Stops the purges still to come (the worker stops; the next owner's commits purge). */
  close(): void {
    this.#closed = true;
    for (const part of this.#parts.values()) clearTimeout(part.timer);
  }

  #next(partition: number, part: PartitionPurge): void {
    if (this.#closed || part.running || part.timer || part.wanted <= part.below) return;
    if (this.#parts.get(partition) !== part) return; // forgotten meanwhile
    const wait = part.sentAt + this.#everyMs - performance.now();
    if (wait > 0) {
      part.timer = setTimeout(
        function purgeLater(this: ScoredFrames) {
          part.timer = undefined;
          this.#next(partition, part);
        }.bind(this),
        wait,
      );
      part.timer.unref?.();
      return;
    }
    part.running = true;
    part.sentAt = performance.now();
    const seq = part.wanted;
    this.#bus.jsm.streams
      .purge(this.#bus.stream, { filter: this.#bus.subject(partition), seq })
      .then(
        (answer) => {
          part.below = seq;
          this.purged += answer.purged;
          if (this.#failing) this.#log.info("scored frames purged again", { partition });
          this.#failing = false;
        },
        (error) => {
          if (!this.#failing) {
            this.#log.warn(
              "could not purge scored frames; tried again after the next commit",
              error as Error,
              {
                partition,
              },
            );
          }
          this.#failing = true;
          this.#onError?.(error);
        },
      )
      .finally(() => {
        part.running = false;
        // A commit that came meanwhile: its point waits for the interval.
        if (!this.#failing) this.#next(partition, part);
      });
  }
}
