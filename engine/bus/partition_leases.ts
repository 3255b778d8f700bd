// Partition ownership for inference workers: leases in a JetStream KV bucket, fenced by revision.
import type { KV } from "@nats-io/kv";
import type { Logger } from "../../telemetry/logger.ts";

/** The value of key `p.<n>`: who owns the partition until when, and how far it is scored. */
export interface PartitionRecord {
  /** Worker id of the owner; "" when released. */
  owner: string;
  /** Epoch ms after which anyone may take the partition over. */
  expires: number;
  /** Stream sequence of the last frame whose windows' alerts are in the owner's outbox. */
  committed: number;
  /** First sequence a new owner must re-read to rebuild every window (0: committed + 1). */
  replay: number;
  /** Frames of the partition not yet taken by its owner, at the last commit or renewal. */
  lag: number;
}

export interface PartitionLeasesOptions {
  kv: KV;
  partitions: number;
  workerId: string;
  /** `NATS_LEASE_MS`. */
  leaseMs: number;
  log: Logger;
  /** A partition was taken: start reading it from `record`. */
  onAcquire(partition: number, record: PartitionRecord): void | Promise<void>;
  /** Give the partition up cleanly: stop reading, finish and commit the batch in flight. */
  onRelease(partition: number): Promise<void>;
  /** The lease was lost (fenced or expired locally): drop everything read from it at once. */
  onLost(partition: number, reason: string): void;
  /**
   * Frames of the partition its owner has not taken yet, written with every renewal so the
   * ingest replicas see a backlog grow while nothing is committed (outbox full); undefined keeps
   * the last value.
   */
  lagOf?(partition: number): number | undefined;
  /** Hears of every failed KV call (a bucket the server lost is made again: `BusRepair`). */
  onError?(error: unknown): void;
  /** A failure of the lease rounds that persists is warned of again after this long (10 min). */
  failureRewarnMs?: number;
}

/** A persisting failure of the lease rounds is warned of again after this long (10 minutes). */
const FAILURE_REWARN_MS = 10 * 60_000;

/**
 * What makes two failures of a round the same failure: the error's code (else its name) and its
 * message without digits (a timeout, a port, a sequence), so the same failure repeated matches
 * and a different one does not.
 */
function failureKey(error: unknown): string {
  if (!(error instanceof Error)) return String(error).replace(/\d+/g, "#");
  const code = (error as { code?: unknown }).code;
  const kind = typeof code === "string" || typeof code === "number" ? String(code) : error.name;
  return `${kind}|${error.message.replace(/\d+/g, "#")}`;
}

interface Held {
  revision: number;
  record: PartitionRecord;
  /** `performance.now()` until which this process may act as the owner. */
  validUntil: number;
  /** KV operations on the key run one after another (a renewal must not fence a commit). */
  chain: Promise<unknown>;
}

const encode = (record: PartitionRecord) => JSON.stringify(record);

/** A lease record as written, or `undefined` for none or one this release cannot read. */
export function decodeRecord(text: string | undefined): PartitionRecord | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as PartitionRecord;
    return typeof r.committed === "number" ? r : undefined;
  } catch {
    return undefined;
  }
}

/** FNV-1a of worker and partition: highest-random-weight (rendezvous) assignment. */
function weight(worker: string, partition: number): number {
  let hash = 0x811c9dc5;
  const text = `${worker}/${partition}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash >>> 0;
}

/**
 * Each worker heartbeats `w.<id>` and, every quarter lease, computes the rendezvous owner of
 * every partition among the live workers: it claims the partitions that hash to it once they
 * are free or expired, and hands over the ones that hash to a newer worker (rebalancing on join
 * and leave). Every write names the revision it read, so a stalled owner that resumes after its
 * lease was taken over fails its next renewal or commit; before that it already stops acting,
 * because its local validity (`leaseMs` minus a margin for clock skew, from when the renewal
 * was sent) has run out.
 */
export class PartitionLeases {
  readonly #o: PartitionLeasesOptions;
  readonly #held = new Map<number, Held>();
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  liveWorkers = 0;

  constructor(options: PartitionLeasesOptions) {
    this.#o = options;
  }

  /** Partitions this worker holds a valid lease on. */
  get owned(): number[] {
    return [...this.#held.keys()].filter((p) => this.owns(p));
  }

  /** True while this worker may score partition `p` (checked before scoring and committing). */
  owns(partition: number): boolean {
    const held = this.#held.get(partition);
    return held !== undefined && performance.now() < held.validUntil;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Records that partition `p` is scored up to `committed` (renewing the lease). Returns false,
   * and reports the partition lost, when the lease is no longer ours.
   */
  commit(partition: number, committed: number, replay: number, lag: number): Promise<boolean> {
    return this.#serial(partition, async (held) => {
      if (performance.now() >= held.validUntil) {
        this.#lose(partition, "lease expired before commit");
        return false;
      }
      const record = { ...held.record, committed, replay, lag };
      return this.#write(partition, held, record);
    });
  }

  /**
   * Writes partition `p`'s current `lag` (the lease renewed with it) when it changed: while the
   * owner commits nothing, this is how ingest learns to answer 429. Returns false when the lease
   * is not ours, as `commit` does.
   */
  reportLag(partition: number, lag: number): Promise<boolean> {
    return this.#serial(partition, async (held) => {
      if (held.record.lag === lag) return true;
      if (performance.now() >= held.validUntil) {
        this.#lose(partition, "lease expired before a lag report");
        return false;
      }
      return this.#write(partition, held, { ...held.record, lag });
    });
  }

  /** Stops the loop, hands every partition over (committed position kept) and leaves. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#wake?.();
    await this.#loop;
    for (const p of [...this.#held.keys()]) await this.#release(p);
    await this.#o.kv.delete(`w.${this.#o.workerId}`).catch(() => {});
  }

  async #run(): Promise<void> {
    const { log } = this.#o;
    const every = Math.max(50, Math.floor(this.#o.leaseMs / 4));
    // The failing rounds since the last one that worked: when they began, the failures warned of
    // (by `failureKey`) and when the last warning was.
    let failing: { since: number; warned: Set<string>; warnedAt: number } | undefined;
    while (!this.#stop.signal.aborted) {
      try {
        await this.#tick();
        if (failing !== undefined) {
          log.info("partition lease rounds work again", {
            failing_ms: Math.round(performance.now() - failing.since),
          });
          failing = undefined;
        }
      } catch (error) {
        // One warning when rounds start failing, one more each time they fail differently (NATS
        // back, but the bucket gone), one every `failureRewarnMs` while they keep failing, and
        // one line when they work again: NATS down for an hour would otherwise log a stack every
        // round. Each other failed round is at debug.
        const key = failureKey(error);
        const t = performance.now();
        if (failing === undefined) {
          failing = { since: t, warned: new Set([key]), warnedAt: t };
          log.warn("partition lease round failed; retrying each round", error as Error);
        } else {
          const fields = { failing_ms: Math.round(t - failing.since) };
          if (!failing.warned.has(key)) {
            failing.warned.add(key);
            failing.warnedAt = t;
            log.warn(
              "partition lease rounds fail differently now; retrying each round",
              error as Error,
              fields,
            );
          } else if (t - failing.warnedAt >= (this.#o.failureRewarnMs ?? FAILURE_REWARN_MS)) {
            failing.warnedAt = t;
            log.warn(
              "partition lease rounds still fail; retrying each round",
              error as Error,
              fields,
            );
          } else log.debug("partition lease round failed", error as Error, fields);
        }
        this.#o.onError?.(error);
      }
      if (this.#stop.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, every);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async #tick(): Promise<void> {
    const { kv, workerId, leaseMs, partitions } = this.#o;
    // Locally expired leases (a stalled process resumes here): stop acting before anything else.
    for (const [p, held] of this.#held) {
      if (performance.now() >= held.validUntil) this.#lose(p, "lease expired locally");
    }
    await kv.put(`w.${workerId}`, JSON.stringify({ expires: Date.now() + leaseMs }));
    const live: string[] = [];
    for await (const key of await kv.keys("w.*")) {
      const id = key.slice(2);
      if (id === workerId) {
        live.push(id);
        continue;
      }
      const entry = await kv.get(key);
      const expires =
        entry?.operation === "PUT" ? Number(entry.json<{ expires: number }>().expires) : 0;
      if (expires > Date.now()) live.push(id);
      // A worker that died without leaving: forget it after a while (any worker may).
      else if (expires < Date.now() - 10 * leaseMs) await kv.delete(key).catch(() => {});
    }
    this.liveWorkers = live.length;
    for (let p = 0; p < partitions; p++) {
      if (this.#stop.signal.aborted) return;
      let best = workerId;
      let bestWeight = -1;
      for (const id of live) {
        const w = weight(id, p);
        if (w > bestWeight || (w === bestWeight && id < best)) {
          best = id;
          bestWeight = w;
        }
      }
      const held = this.#held.get(p);
      if (held && best !== workerId) await this.#release(p);
      else if (held) await this.#renewIfDue(p);
      else if (best === workerId) await this.#claim(p);
    }
  }

  async #renewIfDue(p: number): Promise<void> {
    await this.#serial(p, async (held) => {
      if (held.validUntil - performance.now() > this.#o.leaseMs / 2) return true;
      return this.#write(p, held, { ...held.record, lag: this.#o.lagOf?.(p) ?? held.record.lag });
    });
  }

  async #claim(p: number): Promise<void> {
    const { kv, workerId, leaseMs, log } = this.#o;
    const key = `p.${p}`;
    const entry = await kv.get(key);
    const current = entry?.operation === "PUT" ? decodeRecord(entry.string()) : undefined;
    const now = Date.now();
    if (current && current.owner !== "" && current.owner !== workerId && current.expires > now) {
      return; // still leased to someone else; it hands over or expires
    }
    const record: PartitionRecord = {
      owner: workerId,
      expires: now + leaseMs,
      committed: current?.committed ?? 0,
      replay: current?.replay ?? 0,
      lag: current?.lag ?? 0,
    };
    const sentAt = performance.now();
    let revision: number;
    try {
      revision = entry
        ? await kv.update(key, encode(record), entry.revision)
        : await kv.create(key, encode(record));
    } catch {
      return; // someone else won the race
    }
    const held: Held = {
      revision,
      record,
      validUntil: sentAt + leaseMs * 0.9,
      chain: Promise.resolve(),
    };
    this.#held.set(p, held);
    log.info("partition acquired", {
      partition: p,
      committed: record.committed,
      replay: record.replay,
      previous_owner: current?.owner ?? null,
    });
    try {
      await this.#o.onAcquire(p, record);
    } catch (error) {
      // Not reading it: give it back at once rather than hold a lease nobody serves.
      log.error("could not start reading an acquired partition; handing it back", error as Error, {
        partition: p,
      });
      await this.#serial(p, (h) => this.#write(p, h, { ...h.record, owner: "", expires: 0 }));
      this.#held.delete(p);
    }
  }

  async #release(p: number): Promise<void> {
    if (!this.#held.has(p)) return;
    await this.#o.onRelease(p);
    await this.#serial(p, async (held) => {
      const ok = await this.#write(p, held, { ...held.record, owner: "", expires: 0 });
      // Nobody reads it here any more, whatever the write's outcome: a lease kept after an
      // unanswered write was renewed with no reader (its frames piled up unscored). Unwritten,
      // it runs out within a lease period, and any worker, this one too, claims it then.
      this.#held.delete(p);
      if (ok) {
        this.#o.log.info("partition handed over", {
          partition: p,
          committed: held.record.committed,
        });
      } else {
        this.#o.log.warn("partition released without its lease written; it runs out", {
          partition: p,
        });
      }
      return ok;
    });
  }

  /** Writes `record` with the revision we hold; on a conflict the partition is lost. */
  async #write(p: number, held: Held, record: PartitionRecord): Promise<boolean> {
    const sentAt = performance.now();
    record.expires = record.owner ? Date.now() + this.#o.leaseMs : 0;
    try {
      held.revision = await this.#o.kv.update(`p.${p}`, encode(record), held.revision);
      held.record = record;
      held.validUntil = sentAt + this.#o.leaseMs * 0.9;
      return true;
    } catch (error) {
      if ((error as Error).name === "JetStreamApiError") {
        this.#lose(p, `fenced: ${(error as Error).message}`);
      } else {
        // NATS did not answer: the lease is still ours until it runs out locally.
        this.#o.log.warn("partition lease write failed", error as Error, { partition: p });
        this.#o.onError?.(error);
      }
      return false;
    }
  }

  #lose(p: number, reason: string): void {
    if (!this.#held.delete(p)) return;
    this.#o.log.warn("partition lost", { partition: p, reason });
    this.#o.onLost(p, reason);
  }

  #serial(p: number, fn: (held: Held) => Promise<boolean>): Promise<boolean> {
    const held = this.#held.get(p);
    if (!held) return Promise.resolve(false);
    const next = held.chain.then(() => (this.#held.get(p) === held ? fn(held) : false));
    held.chain = next.catch(() => false);
    return next;
  }
}
