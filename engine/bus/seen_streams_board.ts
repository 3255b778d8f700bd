// The streams seen of each partition under scale-out, in a KV bucket: the owner keeps its entry, a worker taking the partition over lists the streams gone silent before.
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "../../telemetry/logger.ts";
import { kvBucket } from "../_buckets.ts";
import { SEEN_STREAMS_MAX, SeenMemory } from "../window/seen_streams.ts";
import type { SilentStream, StreamWindows } from "../window/stream_windows.ts";
import { saysMissing } from "./bus_repair.ts";
import { partitionOf } from "./partition_of.ts";

/**
 * Streams remembered per partition, the most recently active kept: the single process's bound.
 * An entry is the single process's file format; a stream takes at most
 * `{"stream_id":"<128>","seen_at":"<24>","step_ms":<22>},` = 216 bytes, so 4096 of them are at
 * most 885 KB, under NATS's default 1 MB message limit.
 */
export const SEEN_PER_PARTITION = SEEN_STREAMS_MAX;

export interface SeenStreamsBoardOptions {
  nc: NatsConnection;
  /** `NATS_STREAM`: the bucket is `<prefix>_seen`. */
  prefix: string;
  /** `NATS_PARTITIONS`: a stream remembered under another partition (the count changed) is left out. */
  partitions: number;
  log: Pick<Logger, "warn" | "info">;
  /** Streams remembered per partition ({@link SEEN_PER_PARTITION}). */
  max?: number;
  /** How long a read or write waits for NATS before it counts as failed (5 s, the client's own). */
  timeoutMs?: number;
}

/**
 * The streams seen of every partition in KV bucket `<prefix>_seen`, one key `p<partition>` holding
 * what {@link SeenMemory} holds (the single process's `streams_seen.json`, per partition). A worker
 * taking a partition reads its entry ({@link partition}) and lists the remembered streams its
 * windows do not hold as silent; it writes the entry every few seconds when it changed and when it
 * hands the partition over. Writes are compare-and-set on the entry's revision: an entry written by
 * another owner meanwhile (two owners around a takeover) is read and folded in first, so neither
 * owner's streams are lost. NATS not answering never throws: it is logged at warn once a spell, the
 * partition is scored meanwhile, and an entry not read yet is never overwritten.
 *
 * @example
 * const board = new SeenStreamsBoard({ nc, prefix: "FRAMES", partitions: 8, log });
 * const seen = board.partition(3); // at takeover
 * await seen.ready(AbortSignal.timeout(1000));
 * seen.silent(busNow, idleMs, windows); await seen.save(windows); // every few seconds, at hand-over
 */
export class SeenStreamsBoard {
  readonly #o: SeenStreamsBoardOptions;
  #kv: Promise<KV> | undefined;
  #failing = false;

  constructor(options: SeenStreamsBoardOptions) {
    if (!Number.isInteger(options.partitions) || options.partitions < 1) {
      throw new RangeError(`'partitions' must be a positive integer, got ${options.partitions}`);
    }
    this.#o = options;
  }

  /** Partition `id`'s streams seen, its entry being read from now on. */
  partition(id: number): PartitionSeen {
    const { partitions, max = SEEN_PER_PARTITION } = this.#o;
    return new PartitionSeen(this, `p${id}`, new SeenMemory(max), (streamId) => {
      return partitionOf(streamId, partitions) === id;
    });
  }

  /** @internal The bucket, opened on first use and again after a failure. */
  open(): Promise<KV> {
    this.#kv ??= kvBucket(this.#o.nc, `${this.#o.prefix}_seen`, { history: 1 }).catch((error) => {
      this.#kv = undefined;
      throw error;
    });
    return this.#kv;
  }

  /**
   * @internal `op`, or a rejection once it has not settled within `timeoutMs`: what it does after
   * is not waited for (a write that lands late is found by the next read of the revision).
   */
  within<T>(op: Promise<T>): Promise<T> {
    const deadline = AbortSignal.timeout(this.#o.timeoutMs ?? 5000);
    return new Promise((resolve, reject) => {
      const late = () => reject(deadline.reason);
      deadline.addEventListener("abort", late, { once: true });
      op.then(
        function settled(value) {
          deadline.removeEventListener("abort", late);
          resolve(value);
        },
        function failed(error) {
          deadline.removeEventListener("abort", late);
          reject(error);
        },
      );
    });
  }

  /** @internal */
  failed(what: string, error: unknown): void {
    if (!this.#failing) this.#o.log.warn(`${what}; retried every few seconds`, error);
    this.#failing = true;
    // The server lost the bucket (restarted without its store): made again at the next use.
    if (saysMissing(error)) this.#kv = undefined;
  }

  /** @internal */
  answered(): void {
    if (this.#failing) this.#o.log.info("the board of streams seen answers again");
    this.#failing = false;
  }

  /** @internal */
  unusable(key: string, problem: string): void {
    this.#o.log.warn("a partition's streams seen are unusable; replaced at its next write", {
      key,
      problem,
    });
  }
}

/** One partition's streams seen, as its owner holds them: see {@link SeenStreamsBoard}. */
export class PartitionSeen {
  readonly #board: SeenStreamsBoard;
  readonly #key: string;
  readonly #memory: SeenMemory;
  readonly #keep: (streamId: string) => boolean;
  /** The entry's revision when last read or written (0: none); undefined until read. */
  #revision: number | undefined;
  #written = "";
  #reading: Promise<boolean>;
  /** Saves one at a time: the timer's and the hand-over's. */
  #saving: Promise<void> = Promise.resolve();

  constructor(
    board: SeenStreamsBoard,
    key: string,
    memory: SeenMemory,
    keep: (streamId: string) => boolean,
  ) {
    this.#board = board;
    this.#key = key;
    this.#memory = memory;
    this.#keep = keep;
    this.#reading = this.#read();
  }

  /** Whether the entry was read: resolves once it was, or false once it failed or `signal` aborted. */
  ready(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(this.#revision !== undefined);
    return new Promise((resolve) => {
      const late = () => resolve(false);
      signal.addEventListener("abort", late, { once: true });
      void this.#reading.then(function read(ok) {
        signal.removeEventListener("abort", late);
        resolve(ok);
      });
    });
  }

  /** See {@link SeenMemory.silent}: the remembered streams none of `lanes` holds, silent at `now`. */
  silent(now: number, idleMs: number, lanes: readonly StreamWindows[]): SilentStream[] {
    return this.#memory.silent(now, idleMs, lanes);
  }

  /**
   * Folds in what `lanes` hold now and writes the entry when it changed (reading it first when it
   * was not read yet). Never rejects: a failure is logged and the next save tries again.
   */
  save(lanes: readonly StreamWindows[]): Promise<void> {
    this.#memory.fold(lanes);
    this.#saving = this.#saving.then(() => this.#write());
    return this.#saving;
  }

  async #write(): Promise<void> {
    // Twice at most: a first write refused (written by another owner meanwhile, or unanswered)
    // reads the entry again, folds it in and writes once more.
    for (let attempt = 0; attempt < 2; attempt++) {
      // Read first (at takeover, or again after a refused write): an entry is never overwritten unread.
      if (this.#revision === undefined) await this.#reading;
      if (this.#revision === undefined) {
        this.#reading = this.#read();
        if (!(await this.#reading)) return;
      }
      const text = this.#memory.text();
      if (text === this.#written) return;
      try {
        const kv = await this.#board.within(this.#board.open());
        this.#revision = await this.#board.within(
          this.#revision ? kv.update(this.#key, text, this.#revision) : kv.create(this.#key, text),
        );
        this.#written = text;
        this.#board.answered();
        return;
      } catch (error) {
        this.#revision = undefined;
        if (attempt === 1) this.#board.failed("a partition's streams seen were not written", error);
      }
    }
  }

  /** Reads the entry and folds it in: false when NATS did not answer (logged). */
  async #read(): Promise<boolean> {
    try {
      const kv = await this.#board.within(this.#board.open());
      const entry = await this.#board.within(kv.get(this.#key));
      if (entry?.operation === "PUT") {
        const problem = this.#memory.read(entry.string(), this.#keep);
        if (problem !== undefined) this.#board.unusable(this.#key, problem);
      }
      this.#revision = entry?.revision ?? 0;
      this.#written = "";
      this.#board.answered();
      return true;
    } catch (error) {
      this.#board.failed("a partition's streams seen were not read", error);
      return false;
    }
  }
}
