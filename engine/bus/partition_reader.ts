// Reads one partition of the frame stream into a bounded buffer, from a start sequence, until closed.
import type { Logger } from "../../telemetry/logger.ts";
import { delay } from "../_delay.ts";
import { reclaim } from "../_reclaim.ts";
import { decodeFrame, type FrameMessage } from "./frame_message.ts";
import type { NatsBus } from "./nats_bus.ts";

/** A frame read back from the bus. */
export interface BusFrame extends FrameMessage {
  seq: number;
  /** Frames of the partition after this one not yet delivered to us. */
  pending: number;
}

/**
 * What a buffered frame costs beyond its values: the frame object, its header strings, the
 * typed array and its buffer, the buffer's slot. Measured with a 12-feature model (48 bytes of
 * values) whose worker read ahead 200,000 and 400,000 frames: its RSS grew by 1,326 and 1,344
 * bytes per frame (tmp/review_scaleout/r6_readahead_memory.ts), so about 1,290 besides the values;
 * rounded up. Counting only the values let a small model's worker hold 28 times its budget.
 */
export const FRAME_OVERHEAD_BYTES = 1_300;

/** What one buffered frame of `values` counts against the {@link ReadAheadBudget}. */
export const frameCost = (values: { byteLength: number }): number =>
  values.byteLength + FRAME_OVERHEAD_BYTES;

/** How often a reader paused on a full budget asks the server how much it has not read yet. */
const PAUSED_PENDING_MS = 1000;

/**
 * The memory of frames read ahead, all partitions of a worker together: each frame counts its
 * values and {@link FRAME_OVERHEAD_BYTES}. A reader stops pulling while the worker holds
 * `maxBytes` of unscored frames, so a worker that owns every partition of a backlog stays bounded
 * in memory whatever the backlog and however small its model's frames.
 */
export class ReadAheadBudget {
  readonly maxBytes: number;
  #used = 0;
  #waiting: (() => void)[] = [];

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Frames of `nFeatures` values the budget holds (the queue capacity a worker's `/stats` reports). */
  capacity(nFeatures: number): number {
    return Math.floor(this.maxBytes / frameCost({ byteLength: nFeatures * 4 }));
  }

  get used(): number {
    return this.#used;
  }

  get full(): boolean {
    return this.#used >= this.maxBytes;
  }

  take(bytes: number): void {
    this.#used += bytes;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    if (this.#used < this.maxBytes / 2 && this.#waiting.length) {
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const resume of waiting) resume();
    }
  }

  /**
   * Resolves once the budget is below half full (at once when it is not full), or when `signal`
   * aborts; to whether there is room.
   */
  room(signal?: AbortSignal): Promise<boolean> {
    if (!this.full) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const resume = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      };
      const onAbort = () => {
        this.#waiting = this.#waiting.filter((w) => w !== resume);
        resolve(!this.full);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(resume);
    });
  }

  /** Wakes every waiting reader (closing, stopping). */
  wakeAll(): void {
    this.release(0);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resume of waiting) resume();
  }
}

export interface PartitionReaderOptions {
  bus: NatsBus;
  /** `NATS_STREAM`. */
  stream: string;
  partition: number;
  /**
   * Values per frame of the largest model served (sizes the pulls). Frames of several models
   * share a partition: each frame's size is checked against the model it names when it is taken.
   */
  nFeatures: number;
  budget: ReadAheadBudget;
  log: Logger;
  /** Called after each frame is buffered (wakes the scoring loop). */
  onFrame: () => void;
  /** Hears of every failed read (a stream the server lost is made again: `BusRepair`). */
  onError?: (error: unknown) => void;
}

/**
 * An ordered consumer on `<stream>.p.<n>` from a start sequence, re-created from the last
 * sequence read after any failure (a restarted server forgets ephemeral consumers), buffering
 * decoded frames until the worker `take`s them. Pulls are short (2 s) and bounded in bytes by
 * the worker's {@link ReadAheadBudget}.
 */
export class PartitionReader {
  readonly partition: number;
  readonly #o: PartitionReaderOptions;
  readonly #frames: BusFrame[] = [];
  #head = 0;
  #closed = false;
  /** Aborted on close: a reader waiting to read again stops at once. */
  readonly #stop = new AbortController();
  #stopPull: () => void = () => {};
  #bytes = 0;
  /** Frames of the partition after the last one read, not delivered to us yet. */
  #pending = 0;
  /** Last sequence read (the reader resumes after it). */
  readSeq: number;

  constructor(options: PartitionReaderOptions, from: number) {
    this.#o = options;
    this.partition = options.partition;
    this.readSeq = from - 1;
    void this.#read(from);
  }

  /** Frames buffered, not yet taken. */
  get length(): number {
    return this.#frames.length - this.#head;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Frames of the partition not taken yet: those buffered, and those after the last one read
   * (the newest message's pending count, which already counts every frame delivered after it;
   * asked of the server every second while the reader waits for budget room).
   */
  get backlog(): number {
    return this.#pending + this.length;
  }

  /** The next buffered frame, in sequence order. */
  take(): BusFrame | undefined {
    if (this.#head >= this.#frames.length) return undefined;
    const frame = this.#frames[this.#head++];
    if (this.#head > 64 && this.#head * 2 > this.#frames.length) {
      this.#frames.splice(0, this.#head);
      this.#head = 0;
    }
    const bytes = frameCost(frame.values);
    this.#bytes -= bytes;
    this.#o.budget.release(bytes);
    return frame;
  }

  /** Stops reading and drops what is buffered. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    this.#stopPull();
    this.#o.budget.release(this.#bytes);
    this.#bytes = 0;
    this.#frames.length = 0;
    this.#head = 0;
    this.#o.budget.wakeAll();
  }

  async #read(from: number): Promise<void> {
    const { bus, stream, partition, budget, log, nFeatures } = this.#o;
    let start = from;
    while (!this.#closed) {
      try {
        await this.#room();
        if (this.#closed) break;
        const consumer = await bus.js.consumers.get(stream, {
          filter_subjects: bus.subject(partition),
          opt_start_seq: Math.max(1, start),
        });
        // Short pulls: a restarted server (ephemeral consumer gone) is noticed within seconds.
        // The client buffers up to a pull's bytes beside ours: a small share of the budget.
        const frameBytes = nFeatures * 4 + 512;
        const pullBytes = Math.max(2 * frameBytes, Math.floor(budget.maxBytes / 8));
        const messages = await consumer.consume({ max_bytes: pullBytes, expires: 2000 });
        this.#stopPull = () => messages.stop();
        if (this.#closed) messages.stop();
        for await (const m of messages) {
          if (this.#closed) break;
          this.readSeq = m.seq;
          this.#pending = m.info.pending;
          const frame = decodeFrame(m.headers, m.data);
          // The client's message buffer is garbage now: a large buffer behind a small object,
          // which V8 otherwise collects late (see engine/_reclaim.ts).
          reclaim(m.data.byteLength);
          if ("error" in frame) {
            log.error("message on the bus is not a frame; skipped", {
              seq: m.seq,
              subject: m.subject,
              reason: frame.error,
            });
            continue;
          }
          this.#frames.push({ ...frame, seq: m.seq, pending: m.info.pending });
          const cost = frameCost(frame.values);
          this.#bytes += cost;
          budget.take(cost);
          this.#o.onFrame();
          if (budget.full) {
            // Stop pulling until the worker has scored half the budget; the pull resumes from
            // the next sequence.
            messages.stop();
            break;
          }
        }
        await consumer.delete().catch(() => {});
      } catch (error) {
        if (this.#closed) break;
        log.warn("partition reader failed; reading again", error as Error, { partition });
        this.#o.onError?.(error);
        await delay(250, this.#stop.signal);
      }
      start = this.readSeq + 1;
    }
  }

  /**
   * Waits for budget room. Meanwhile frames arrive that the last message's pending count does not
   * know of: every second the server says how many follow the last one read (a consumer made for
   * the question and deleted), so the backlog the owner reports (ingest's 429) keeps growing.
   */
  async #room(): Promise<void> {
    const { bus, stream, partition, budget } = this.#o;
    while (!this.#closed) {
      const wait = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(PAUSED_PENDING_MS)]);
      if (await budget.room(wait)) return;
      if (this.#closed) return;
      try {
        const probe = await bus.js.consumers.get(stream, {
          filter_subjects: bus.subject(partition),
          opt_start_seq: this.readSeq + 1,
        });
        const info = await probe.info(true);
        this.#pending = info.num_pending;
        await probe.delete().catch(() => {});
      } catch {
        // Unanswered: the last count stands; the read loop notices an outage itself.
      }
    }
  }
}
