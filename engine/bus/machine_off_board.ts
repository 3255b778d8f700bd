// Stopped machines and silent streams under scale-out: each worker posts its `machine_off` list and its partitions' silent streams to a KV bucket whose entries age out; an ingest replica gathers them for its `/stats`.
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import * as v from "valibot";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { kvBucket } from "../_buckets.ts";
import { delay } from "../_delay.ts";
import type { MachineOffEntry } from "../window/machine_states.ts";
import type { SilentStream } from "../window/stream_windows.ts";
import { saysMissing } from "./bus_repair.ts";

/**
 * A stream whose machine is stopped, since its first stopped frame's time, and whether its frames
 * still read as running (`window/reads_running.ts`): a `/stats` `machine_off` entry.
 */
export type MachineOff = MachineOffEntry;

const dateTime = v.pipe(
  v.string(),
  v.check((s) => Number.isFinite(Date.parse(s)), "not a date-time"),
);

const machineOffSchema = v.object({
  stream_id: v.pipe(v.string(), v.regex(STREAM_ID_PATTERN)),
  since: dateTime,
  reads_running: v.optional(
    v.object({
      since: dateTime,
      sensor: v.string(),
      in_range: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
    }),
  ),
});

/**
 * A partition a worker owns, since when, with its streams gone silent (`StreamWindows.silent`,
 * judged in bus time): part of the worker's post.
 */
export interface OwnedPartition {
  partition: number;
  /** When the worker took the partition (its clock, ISO): of two posts naming it, the later wins. */
  since: string;
  silent: SilentStream[];
}

/** What a worker posts: its stopped machines, and the partitions it owns with their silent streams. */
export interface WorkerReport {
  machine_off: MachineOff[];
  partitions: OwnedPartition[];
}

/** What a replica serves in its `/stats`: every live worker's posts, merged. */
export interface GatheredReport {
  machine_off: MachineOff[];
  /**
   * Set before any read of the bucket succeeded: nothing is known yet, and the lists are empty for
   * want of knowledge, not because every machine runs (a replica's `/stats` leaves them out).
   */
  unknown?: true;
  /**
   * Absent while a post of an earlier release is among them: that worker posts no silent streams,
   * and a list without its partitions' would claim they have none.
   */
  silent?: SilentStream[];
}

const silentSchema = v.object({
  stream_id: v.pipe(v.string(), v.regex(STREAM_ID_PATTERN)),
  last_accepted_at: dateTime,
});

const ownedSchema = v.object({
  partition: v.pipe(v.number(), v.integer(), v.minValue(0)),
  since: dateTime,
  silent: v.array(silentSchema),
});

/**
 * The value of `w.<worker>`: that worker's lists when it last posted. `partitions` is optional: a
 * worker of an earlier release posts none, and its post still gives its stopped machines.
 */
const postSchema = v.object({
  worker: v.string(),
  at: v.string(),
  machine_off: v.array(machineOffSchema),
  partitions: v.optional(v.array(ownedSchema)),
});

/**
 * Entries a worker posts at most, the oldest stops first: with stream ids of at most 128
 * characters a post stays well under NATS's default 1 MB message limit.
 */
export const MAX_POSTED = 2048;

/**
 * Silent streams a worker posts at most, and a replica lists at most, longest silent first: the
 * most recently silent, as many as the single process's `/stats` lists, so a line that has just
 * gone dark is listed however many old ones are. The deployment's most recently silent are among
 * each worker's, so a post holds no more (and stays under the message limit beside
 * {@link MAX_POSTED} stopped machines).
 */
export const MAX_SILENT = 256;

/**
 * The bucket's max age for lease period `leaseMs` (`NATS_LEASE_MS`): a dead worker's post ages
 * out within three lease periods, its partitions' new owners listing their streams by then.
 */
export const machineOffTtlMs = (leaseMs: number): number => 3 * leaseMs;

/** How many posts a worker makes within one TTL when its list does not change. */
const POSTS_PER_TTL = 3;

/** A read unanswered after this many read timeouts is abandoned: the next one starts afresh. */
const ABANDON_READS = 10;

const bySince = (a: MachineOff, b: MachineOff) =>
  Date.parse(a.since) - Date.parse(b.since) ||
  (a.stream_id < b.stream_id ? -1 : a.stream_id > b.stream_id ? 1 : 0);

const byLastAccepted = (a: SilentStream, b: SilentStream) =>
  Date.parse(a.last_accepted_at) - Date.parse(b.last_accepted_at) ||
  (a.stream_id < b.stream_id ? -1 : a.stream_id > b.stream_id ? 1 : 0);

/**
 * The union of several workers' lists: one entry per stream, the earliest `since` (two workers
 * list a stream for a moment around a takeover, the new owner from the first stopped frame it
 * re-read) and the `reads_running` of either, oldest stop first.
 *
 * @example
 * mergeMachineOff([[{ stream_id: "a", since: t1 }], [{ stream_id: "a", since: t0 }]]);
 * // [{ stream_id: "a", since: t0 }]
 */
export function mergeMachineOff(lists: Iterable<readonly MachineOff[]>): MachineOff[] {
  const earliest = new Map<string, MachineOff>();
  for (const list of lists) {
    for (const entry of list) {
      const known = earliest.get(entry.stream_id);
      const doubt = known?.reads_running ?? entry.reads_running;
      const since =
        !known || Date.parse(entry.since) < Date.parse(known.since) ? entry.since : known.since;
      earliest.set(entry.stream_id, {
        stream_id: entry.stream_id,
        since,
        ...(doubt ? { reads_running: doubt } : {}),
      });
    }
  }
  return [...earliest.values()].sort(bySince);
}

/**
 * The silent streams of several workers' posts, longest silent first: the `max` most recently
 * silent, as the single process lists them (a line that has just gone dark is never cut off by
 * old ones). Each
 * partition is judged by the worker that took it last: around a takeover the old owner's post
 * still names it (until that worker posts again, or its post ages out when it died), while the new
 * owner has read the partition's frames since, so a stream the old owner lists as silent and the
 * new one has seen again is not listed. One entry per stream, the latest `last_accepted_at`.
 *
 * @example
 * mergeSilent([
 *   [{ partition: 3, since: t0, silent: [{ stream_id: "a", last_accepted_at: t1 }] }],
 *   [{ partition: 3, since: t5, silent: [] }], // the new owner has seen "a" again
 * ]);
 * // []
 */
export function mergeSilent(
  posts: Iterable<readonly OwnedPartition[]>,
  max = MAX_SILENT,
): SilentStream[] {
  const owner = new Map<number, OwnedPartition>();
  for (const owned of posts) {
    for (const part of owned) {
      const known = owner.get(part.partition);
      if (!known || Date.parse(part.since) > Date.parse(known.since)) {
        owner.set(part.partition, part);
      }
    }
  }
  const latest = new Map<string, SilentStream>();
  for (const part of owner.values()) {
    for (const entry of part.silent) {
      const known = latest.get(entry.stream_id);
      if (!known || Date.parse(entry.last_accepted_at) > Date.parse(known.last_accepted_at)) {
        latest.set(entry.stream_id, entry);
      }
    }
  }
  const merged = [...latest.values()].sort(byLastAccepted);
  return merged.length > max ? merged.slice(-max) : merged;
}

/**
 * `partitions` in partition order, each keeping only those of its silent streams that are among
 * the `max` most recently silent of them all (the others are beyond what a replica lists).
 */
function recentlySilent(partitions: readonly OwnedPartition[], max: number): OwnedPartition[] {
  const sorted = [...partitions].sort((a, b) => a.partition - b.partition);
  const ranked = sorted
    .flatMap((part, i) => part.silent.map((entry) => ({ i, entry })))
    .sort((a, b) => byLastAccepted(a.entry, b.entry))
    .slice(-max);
  const kept = sorted.map((part) => ({ ...part, silent: [] as SilentStream[] }));
  for (const { i, entry } of ranked) kept[i].silent.push(entry);
  return kept;
}

export interface MachineOffBoardOptions {
  nc: NatsConnection;
  /** `NATS_STREAM`: the bucket is `<prefix>_machine_off`. */
  prefix: string;
  /** The bucket's max age, made with it: how long a worker's post outlives its last refresh. */
  ttlMs: number;
  log: Pick<Logger, "warn" | "info">;
  /** How long {@link MachineOffBoard.gather} waits for NATS before serving its last good copy. */
  readTimeoutMs?: number;
  /** A gathered list younger than this is served again without asking NATS. */
  freshMs?: number;
}

/**
 * The workers' stopped machines and silent streams in KV bucket `<prefix>_machine_off`, one key
 * `w.<worker>` per worker. A worker {@link post}s its report when it changes and again every
 * third of the bucket's max age, so a worker that dies stops refreshing and its post ages out on
 * the server's clock (NATS 2.9 has no per-key TTL; the bucket-wide one is the expiry, as for the
 * retraining leases). A replica {@link gather}s every post into one report; the bucket is opened
 * on first use and again after a failure, and neither side ever throws: NATS not answering is
 * logged at warn, once a spell, and the last good report is served meanwhile.
 *
 * @example
 * const board = new MachineOffBoard({ nc, prefix: "FRAMES", ttlMs: 30_000, log });
 * void board.post("worker-a", () => ({ machine_off, partitions }), stop.signal); // a worker
 * const { machine_off, silent } = await board.gather(); // a replica's /stats
 */
export class MachineOffBoard {
  readonly #o: MachineOffBoardOptions;
  #kv: Promise<KV> | undefined;
  /** The bucket's max age as made (an existing bucket keeps its own). */
  #ttlMs: number;
  #last: GatheredReport = { machine_off: [], unknown: true };
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<GatheredReport> | undefined;
  #readStarted = Number.NEGATIVE_INFINITY;
  /** Malformed posts warned of (`key@revision`), so each is logged once. */
  #malformed = new Set<string>();
  #failing = false;
  #truncated = false;

  constructor(options: MachineOffBoardOptions) {
    if (!(options.ttlMs >= 300)) {
      throw new RangeError(`'ttlMs' must be at least 300, got ${options.ttlMs}`);
    }
    this.#o = options;
    this.#ttlMs = options.ttlMs;
  }

  #open(): Promise<KV> {
    this.#kv ??= (async () => {
      const name = `${this.#o.prefix}_machine_off`;
      // Made just now by a process with another max age: bound to as is.
      const kv = await kvBucket(this.#o.nc, name, { history: 1, ttl: this.#o.ttlMs });
      const made = (await kv.status()).ttl;
      if (made > 0) this.#ttlMs = made;
      return kv;
    })().catch((error) => {
      // Opened again on the next use.
      this.#kv = undefined;
      throw error;
    });
    return this.#kv;
  }

  #failed(what: string, error: unknown): void {
    if (!this.#failing) this.#o.log.warn(`${what}; the last good lists stand`, error);
    this.#failing = true;
  }

  #answered(): void {
    if (this.#failing) this.#o.log.info("machine_off board answers again");
    this.#failing = false;
  }

  /**
   * Posts `report()` as `w.<worker>` whenever it changes (looked at every second at most) and at
   * least every third of the bucket's max age, until `signal` aborts: the oldest
   * {@link MAX_POSTED} stops, and the {@link MAX_SILENT} most recently silent streams. Never
   * rejects.
   */
  async post(worker: string, report: () => WorkerReport, signal: AbortSignal): Promise<void> {
    let written: string | undefined;
    let writtenAt = Number.NEGATIVE_INFINITY;
    do {
      const refreshMs = this.#ttlMs / POSTS_PER_TTL;
      const { machine_off, partitions } = report();
      const now = machine_off.sort(bySince);
      if (now.length > MAX_POSTED && !this.#truncated) {
        this.#truncated = true;
        this.#o.log.warn("more stopped machines than one post holds; the oldest are posted", {
          worker,
          stopped: now.length,
          posted: MAX_POSTED,
        });
      }
      const posted = {
        machine_off: now.slice(0, MAX_POSTED),
        partitions: recentlySilent(partitions, MAX_SILENT),
      };
      const text = JSON.stringify(posted);
      if (text !== written || performance.now() - writtenAt >= refreshMs) {
        try {
          const kv = await this.#open();
          const at = new Date().toISOString();
          await kv.put(`w.${worker}`, JSON.stringify({ worker, at, ...posted }));
          written = text;
          writtenAt = performance.now();
          this.#answered();
        } catch (error) {
          this.#failed("machine_off not posted", error);
          // The server lost the bucket (restarted without its store): made again at the next post.
          if (saysMissing(error)) this.#kv = undefined;
        }
      }
    } while (await delay(Math.min(1000, this.#ttlMs / POSTS_PER_TTL), signal));
  }

  /** Removes `worker`'s post (a worker stopping cleanly: its streams leave the lists at once). */
  async leave(worker: string): Promise<void> {
    try {
      await (await this.#open()).delete(`w.${worker}`);
    } catch {
      // Not answered: the post ages out within the bucket's max age.
    }
  }

  /**
   * Every live worker's post merged ({@link mergeMachineOff}, {@link mergeSilent}); a malformed
   * post is skipped with a warning. When NATS does not answer within `readTimeoutMs` (default
   * 1 s) or fails, the last good report; one read at a time, reused for `freshMs` (default 1 s).
   * Never rejects.
   */
  gather(): Promise<GatheredReport> {
    const readTimeoutMs = this.#o.readTimeoutMs ?? 1000;
    if (performance.now() - this.#readAt < (this.#o.freshMs ?? 1000)) {
      return Promise.resolve(this.#last);
    }
    // A read that never ends (a consumer left waiting) must not hold the list back for good.
    if (performance.now() - this.#readStarted > ABANDON_READS * readTimeoutMs) {
      this.#reading = undefined;
    }
    if (!this.#reading) {
      this.#readStarted = performance.now();
      const reading: Promise<GatheredReport> = this.#read()
        .then(
          (report) => {
            this.#last = report;
            this.#readAt = performance.now();
            this.#answered();
            return report;
          },
          (error) => {
            this.#failed("machine_off board not read", error);
            return this.#last;
          },
        )
        .finally(() => {
          if (this.#reading === reading) this.#reading = undefined;
        });
      this.#reading = reading;
    }
    const reading = this.#reading;
    const deadline = AbortSignal.timeout(readTimeoutMs);
    return new Promise((resolve) => {
      const late = () => {
        this.#failed("machine_off board slow to answer", deadline.reason);
        resolve(this.#last);
      };
      deadline.addEventListener("abort", late, { once: true });
      void reading.then(function answered(report) {
        deadline.removeEventListener("abort", late);
        resolve(report);
      });
    });
  }

  async #read(): Promise<GatheredReport> {
    const kv = await this.#open();
    const lists: MachineOff[][] = [];
    const owned: OwnedPartition[][] = [];
    let earlierRelease = false;
    const malformed = new Set<string>();
    for await (const key of await kv.keys("w.*")) {
      const entry = await kv.get(key);
      if (entry?.operation !== "PUT") continue;
      let issue = "not JSON";
      try {
        const parsed = v.safeParse(postSchema, entry.json());
        if (parsed.success) {
          lists.push(parsed.output.machine_off);
          if (parsed.output.partitions) owned.push(parsed.output.partitions);
          else earlierRelease = true;
          continue;
        }
        issue = v.summarize(parsed.issues);
      } catch {
        // not JSON: skipped below
      }
      const seen = `${key}@${entry.revision}`;
      malformed.add(seen);
      if (!this.#malformed.has(seen)) {
        this.#o.log.warn("a worker's machine_off post is malformed; skipped", { key, issue });
      }
    }
    this.#malformed = malformed;
    const machine_off = mergeMachineOff(lists);
    return earlierRelease ? { machine_off } : { machine_off, silent: mergeSilent(owned) };
  }
}
