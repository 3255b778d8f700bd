// Where a partition must be read again from for a new owner to rebuild every stream's window.
import { GAP_STEPS } from "../window/machine_states.ts";

export interface ReplayRingOptions {
  /** Streams kept at most (`MAX_STREAMS`), the least recently active forgotten first. */
  maxStreams?: number;
  /**
   * Bus time a stream may send nothing before it is forgotten (`INCIDENT_STALE_MS`), or 10 of its
   * own steps when that is longer: the machine-off gap rule. Its next frame after such a silence
   * holds the replay point again from that frame on, and the alert path has resolved its incident
   * as stale meanwhile. Infinity (the default): never.
   */
  idleMs?: number;
  /**
   * How long the stream keeps a frame (`NATS_STREAM_MAX_AGE_S`): a stream whose newest frame is
   * older is forgotten whatever its step, as none of its frames can be read again. Infinity: never.
   */
  maxAgeMs?: number;
}

interface StreamRing {
  seqs: Float64Array;
  next: number;
  count: number;
  /** Bus time (`receivedAt`, epoch ms) of its newest frame, and the step before it. */
  at: number;
  step: number;
}

/**
 * Remembers, per stream, the bus sequences of its last `keep` accepted frames (the frames that
 * rebuild its next window and running levels, `WindowShape.rebuildFrames`; `keepAtLeast` raises
 * it when another version with more of them is served), and answers the partition's replay
 * point: the oldest of them across streams. Streams are kept in recency order and bounded like
 * the engine's stream windows (`maxStreams`, least recently active forgotten), so a stream the
 * window store forgot no longer holds the replay point back.
 *
 * A stream that stops sending is forgotten too, once its silence ends its window (`idleMs`) or its
 * frames left the stream (`maxAgeMs`): otherwise it would hold its partition's replay point, and
 * with it the purge of every frame after it, for ever. A stream back after that holds the point
 * from its new frame on. Whether its window restarts is the window's own rule (frame time), not
 * the ring's: a producer forwarding a backlog after an outage (frame times with no gap) continues
 * its window at its owner, while a new owner taking the partition over within `window_size` of its
 * frames starts it afresh, as it cannot read the frames before the silence. Silence is measured in
 * bus time, the ingest replica's receive time of the frames (`receivedAt`): the same for every
 * stream of the partition whatever its producer's clock, carried on the bus, so a new owner
 * reading the same frames again forgets the same streams, and a worker working off a backlog does
 * not take the streams further on in it for silent.
 *
 * Memory: `keep * 8` bytes per stream, `maxStreams` streams at most. `remember` is O(1) (O(keep)
 * once per stream after `keepAtLeast`); `replayPoint` is O(streams), called once per committed
 * batch.
 *
 * @example
 * const ring = new ReplayRing(shape.rebuildFrames, { maxStreams: 1024, idleMs: 300_000 });
 * ring.remember(frame.streamId, frame.seq, frame.receivedAt);
 * const replay = ring.replayPoint(newestReceivedAt);
 */
export class ReplayRing {
  #keep: number;
  readonly #maxStreams: number;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  // Map iteration order is insertion order; re-inserting on activity makes the first key the LRU.
  readonly #streams = new Map<string, StreamRing>();

  constructor(keep: number, options: ReplayRingOptions = {}) {
    const {
      maxStreams = 1024,
      idleMs = Number.POSITIVE_INFINITY,
      maxAgeMs = Number.POSITIVE_INFINITY,
    } = options;
    checkKeep(keep);
    if (!(idleMs > 0)) throw new RangeError(`'idleMs' must be > 0, got ${idleMs}`);
    if (!(maxAgeMs > 0)) throw new RangeError(`'maxAgeMs' must be > 0, got ${maxAgeMs}`);
    this.#keep = keep;
    this.#maxStreams = maxStreams;
    this.#idleMs = idleMs;
    this.#maxAgeMs = maxAgeMs;
  }

  /** Frames kept per stream. */
  get keep(): number {
    return this.#keep;
  }

  /** Streams holding the replay point (sending, or silent for less than their window survives). */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Keeps at least `keep` frames per stream from now on (never fewer than before): a version
   * with running levels served after one without needs more frames to rebuild a window. Each
   * stream's frames kept so far stay, so until it has sent `keep` more its replay point is the
   * oldest of them.
   */
  keepAtLeast(keep: number): void {
    checkKeep(keep);
    if (keep > this.#keep) this.#keep = keep;
  }

  /**
   * Records that `streamId`'s frame at bus sequence `seq`, received at `at` (epoch ms: the frame's
   * `receivedAt`), was accepted into its window.
   */
  remember(streamId: string, seq: number, at = 0): void {
    if (this.#keep === 0) return;
    let ring = this.#streams.get(streamId);
    if (ring) {
      this.#streams.delete(streamId);
      // Two ingest replicas' clocks may differ by a little: bus time never goes back.
      if (at > ring.at) {
        ring.step = at - ring.at;
        ring.at = at;
      }
      if (ring.seqs.length < this.#keep) ring = widened(ring, this.#keep);
    } else {
      if (this.#streams.size >= this.#maxStreams) {
        this.#streams.delete(this.#streams.keys().next().value as string);
      }
      ring = { seqs: new Float64Array(this.#keep), next: 0, count: 0, at, step: 0 };
    }
    this.#streams.set(streamId, ring);
    const size = ring.seqs.length;
    ring.seqs[ring.next] = seq;
    ring.next = (ring.next + 1) % size;
    ring.count = Math.min(size, ring.count + 1);
  }

  /**
   * The first sequence a new owner must read (0: nothing to rebuild), at bus time `now` (the
   * newest `receivedAt` the partition's owner took, of any stream or model): streams silent for
   * longer than their window survives, or whose frames aged out, are forgotten first.
   */
  replayPoint(now = Number.NEGATIVE_INFINITY): number {
    let min = Number.POSITIVE_INFINITY;
    for (const [streamId, ring] of this.#streams) {
      const silence = now - ring.at;
      if (silence > this.#maxAgeMs || silence > Math.max(this.#idleMs, GAP_STEPS * ring.step)) {
        this.#streams.delete(streamId);
        continue;
      }
      const oldest = ring.count < ring.seqs.length ? ring.seqs[0] : ring.seqs[ring.next];
      if (oldest < min) min = oldest;
    }
    return Number.isFinite(min) ? min : 0;
  }
}

function checkKeep(keep: number): void {
  if (!Number.isInteger(keep) || keep < 0) {
    throw new RangeError(`'keep' must be an integer >= 0, got ${keep}`);
  }
}

/** `ring` with room for `keep` sequences, its kept ones first, oldest first. */
function widened(ring: StreamRing, keep: number): StreamRing {
  const seqs = new Float64Array(keep);
  const size = ring.seqs.length;
  const first = ring.count < size ? 0 : ring.next;
  for (let i = 0; i < ring.count; i++) seqs[i] = ring.seqs[(first + i) % size];
  return { ...ring, seqs, next: ring.count };
}
