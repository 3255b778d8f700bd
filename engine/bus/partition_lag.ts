// The backlog of each partition as an ingest replica judges it: its owner's report from the lease record, or, with no live owner, counted from the stream.
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { nanos } from "@nats-io/nats-core";
import type { Logger } from "../../telemetry/logger.ts";
import { delay } from "../_delay.ts";
import { decodeRecord, type PartitionRecord } from "./partition_leases.ts";
import { partitionSubject } from "./partition_of.ts";

/** True while `record` names an owner whose lease has not run out (wall clock, as the workers judge it). */
function leased(record: PartitionRecord | undefined, now: number): boolean {
  return record !== undefined && record.owner !== "" && record.expires > now;
}

export interface PartitionLagOptions {
  kv: KV;
  jsm: JetStreamManager;
  /** `NATS_STREAM`: the frame stream whose partition subjects are counted. */
  stream: string;
  partitions: number;
  log: Logger;
  /** How often the partitions without a live owner are counted again (default 1000 ms). */
  countEveryMs?: number;
  /** Hears of every failed KV or stream call (a bucket the server lost is made again: `BusRepair`). */
  onError?(error: unknown): void;
}

/** A partition counted last round: what it was counted from, so an unchanged one is not counted again. */
interface Counted {
  committed: number;
  /** Frames the stream held on the partition's subject. */
  held: number;
  unscored: number;
}

/**
 * An ingest replica's view of each partition's backlog, for `429 queue_full`. A partition with a
 * live owner has the `lag` its owner writes to the lease record (followed with a KV watch). One
 * without (never claimed, handed over with no successor, or its owner's lease run out: a killed
 * worker's last `lag`, most often 0, would otherwise stand for good) has its frames after
 * `committed` counted from the stream itself, at most once every `countEveryMs`: one stream info
 * for all subjects, and a short-lived consumer only for a partition whose subject changed since
 * it was last counted. A lookup is one array read and one map read.
 *
 * @example const lag = new PartitionLag({ kv, jsm, stream, partitions, log }); lag.follow(signal);
 */
export class PartitionLag {
  readonly #o: PartitionLagOptions;
  /** Each partition's lease record as last watched; undefined: none written (or deleted). */
  readonly #records: (PartitionRecord | undefined)[];
  /** Frames waiting after `committed` of each partition without a live owner, as last counted. */
  #unowned = new Map<number, number>();
  readonly #counted = new Map<number, Counted>();
  /** Since when counting fails (warned once, and once it works again). */
  #failingSince: number | undefined;

  constructor(options: PartitionLagOptions) {
    this.#o = options;
    this.#records = new Array(options.partitions).fill(undefined);
  }

  /** Frames of partition `p` nobody has taken yet: its owner's report, or counted when it has none. */
  lagOf(p: number): number {
    return this.#unowned.get(p) ?? this.#records[p]?.lag ?? 0;
  }

  /** True when partition `p` had no live owner when last counted. */
  isUnowned(p: number): boolean {
    return this.#unowned.has(p);
  }

  /** The largest backlog of any partition. */
  get maxLag(): number {
    let max = 0;
    for (let p = 0; p < this.#records.length; p++) max = Math.max(max, this.lagOf(p));
    return max;
  }

  /** The partitions without a live owner as last counted, and the frames waiting on them. */
  get unowned(): { partitions: number[]; unscored: number } {
    const partitions = [...this.#unowned.keys()].sort((a, b) => a - b);
    let unscored = 0;
    for (const n of this.#unowned.values()) unscored += n;
    return { partitions, unscored };
  }

  /** Follows the lease records and counts the unowned partitions until `signal` aborts. */
  async follow(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#watch(signal), this.#countLoop(signal)]);
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const { kv, log } = this.#o;
    while (!signal.aborted) {
      try {
        const watch = await kv.watch({ key: "p.*" });
        const stop = () => watch.stop();
        signal.addEventListener("abort", stop, { once: true });
        try {
          for await (const entry of watch) {
            const p = Number(entry.key.slice(2));
            if (!(p >= 0 && p < this.#records.length)) continue;
            const record = entry.operation === "PUT" ? decodeRecord(entry.string()) : undefined;
            this.#records[p] = record;
            // A new owner's reports count at once, not a second later.
            if (leased(record, Date.now())) this.#unowned.delete(p);
          }
        } finally {
          // The signal lives as long as the role: a listener per restarted watch would pile up.
          signal.removeEventListener("abort", stop);
        }
      } catch (error) {
        if (!signal.aborted) log.warn("partition watch failed; restarting", error as Error);
        this.#o.onError?.(error);
      }
      await delay(500, signal);
    }
  }

  async #countLoop(signal: AbortSignal): Promise<void> {
    const every = this.#o.countEveryMs ?? 1000;
    // The first round after the watch has had the records' current values.
    while (await delay(every, signal)) {
      try {
        await this.#count();
        if (this.#failingSince !== undefined) {
          this.#o.log.info("unowned partitions counted again", {
            failing_ms: Date.now() - this.#failingSince,
          });
          this.#failingSince = undefined;
        }
      } catch (error) {
        // The last counts stand meanwhile; a NATS outage is logged by whoever publishes.
        if (this.#failingSince === undefined && !signal.aborted) {
          this.#failingSince = Date.now();
          this.#o.log.warn("cannot count the partitions without a live worker", error as Error);
        }
        this.#o.onError?.(error);
      }
    }
  }

  /** One round: every partition without a live owner counted, from the stream. */
  async #count(): Promise<void> {
    const { jsm, stream } = this.#o;
    const unowned: number[] = [];
    for (let p = 0; p < this.#records.length; p++) {
      if (!leased(this.#records[p], Date.now())) unowned.push(p);
    }
    for (const p of this.#counted.keys()) if (!unowned.includes(p)) this.#counted.delete(p);
    if (unowned.length === 0) {
      this.#unowned = new Map();
      return;
    }
    const info = await jsm.streams.info(stream, { subjects_filter: `${stream}.p.*` });
    const onSubject = info.state.subjects ?? {};
    const counts = new Map<number, number>();
    for (const p of unowned) {
      const committed = this.#records[p]?.committed ?? 0;
      const held = onSubject[partitionSubject(stream, p)] ?? 0;
      const last = this.#counted.get(p);
      const unscored =
        held === 0
          ? 0
          : // Nothing committed, so nothing purged: every frame held waits.
            committed === 0
            ? held
            : // No owner purges or commits: the same frames held are the same frames waiting.
              last?.committed === committed && last.held === held
              ? last.unscored
              : await this.#countAfter(p, committed);
      this.#counted.set(p, { committed, held, unscored });
      counts.set(p, unscored);
    }
    // A partition claimed while this round ran has its owner's reports.
    for (const p of counts.keys()) if (leased(this.#records[p], Date.now())) counts.delete(p);
    this.#unowned = counts;
  }

  /** Frames on partition `p`'s subject after `committed`: a consumer's pending count, then it goes. */
  async #countAfter(p: number, committed: number): Promise<number> {
    const { jsm, stream } = this.#o;
    const consumer = await jsm.consumers.add(stream, {
      filter_subject: partitionSubject(stream, p),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: committed + 1,
      ack_policy: AckPolicy.None,
      mem_storage: true,
      // Removed by the server should the delete below be lost.
      inactive_threshold: nanos(10_000),
    });
    await jsm.consumers.delete(stream, consumer.name).catch(() => {});
    return consumer.num_pending;
  }
}
