// Who retrains a model under scale-out: one lease per model in a KV bucket whose entries expire, renewed while the run lasts.
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "../../telemetry/logger.ts";
import { kvBucket } from "../_buckets.ts";
import { delay } from "../_delay.ts";
import { isWrongSequence } from "../infer/nats_registry.ts";

/** How long a lease outlives its last renewal (the bucket's max age): a dead holder frees it within this. */
export const LEASE_TTL_MS = 60_000;

/** The value of `lease.<model>`: who holds it, and when it was taken or last renewed. */
export interface LeaseValue {
  worker: string;
  at: string;
}

const leaseKey = (model: string) => `lease.${model}`;
const leaseValue = (worker: string) =>
  JSON.stringify({ worker, at: new Date().toISOString() } satisfies LeaseValue);

/**
 * The retraining leases of deployment `prefix` (`NATS_STREAM`), in KV bucket `<prefix>_retrain`.
 * The bucket's max age is the lease's time to live: NATS server 2.9 has no per-key TTL, and a
 * bucket-wide one ages every entry out on the server's clock, so no worker's clock decides an
 * expiry. `kv.create` succeeds for one contender only (the key must not exist, or hold a delete
 * marker); the holder renews with `kv.update` at the revision it last wrote, and releases with a
 * revision-checked delete. A holder that dies stops renewing: its entry ages out and the key is
 * free again.
 *
 * @example
 * const leases = await RetrainLeases.open(nc, "FRAMES");
 * const taken = await leases.acquire("pump", "worker-a");
 * if (taken instanceof RetrainLease) { taken.keep(log); ...; await taken.release(); }
 */
export class RetrainLeases {
  readonly kv: KV;
  /** The bucket's max age: a lease lives this long after its last renewal. */
  readonly ttlMs: number;

  constructor(kv: KV, ttlMs: number) {
    if (!(ttlMs >= 100)) throw new RangeError(`'ttlMs' must be at least 100, got ${ttlMs}`);
    this.kv = kv;
    this.ttlMs = ttlMs;
  }

  /**
   * Opens (creating when missing) bucket `<prefix>_retrain` with max age `ttlMs`. An existing
   * bucket keeps the max age it was made with, and the leases follow that one.
   */
  static async open(
    nc: NatsConnection,
    prefix: string,
    options: { ttlMs?: number } = {},
  ): Promise<RetrainLeases> {
    const ttl = options.ttlMs ?? LEASE_TTL_MS;
    const kv = await kvBucket(nc, `${prefix}_retrain`, { history: 1, ttl });
    const made = (await kv.status()).ttl;
    return new RetrainLeases(kv, made > 0 ? made : ttl);
  }

  /** Takes `model`'s lease for `worker`: the lease, or who holds it now. */
  async acquire(model: string, worker: string): Promise<RetrainLease | { holder: string }> {
    try {
      const revision = await this.kv.create(leaseKey(model), leaseValue(worker));
      return new RetrainLease(this.kv, model, worker, revision, this.ttlMs);
    } catch (error) {
      if (!isWrongSequence(error)) throw error;
    }
    const held = await this.kv.get(leaseKey(model)).catch(() => null);
    let holder = "another worker";
    try {
      if (held?.operation === "PUT") holder = held.json<LeaseValue>().worker || holder;
    } catch {
      // not a lease value: still held
    }
    return { holder };
  }
}

/** One model's lease, held by this worker until released or lost. */
export class RetrainLease {
  readonly model: string;
  readonly worker: string;
  readonly #kv: KV;
  readonly #ttlMs: number;
  #revision: number;
  /** `performance.now()` of the last renewal the bucket confirmed. */
  #renewedAt = performance.now();
  readonly #lost = new AbortController();
  readonly #released = new AbortController();
  #keeping: Promise<void> | undefined;
  /** Writes to the key run one after another: two renewals at one revision would fence each other. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(kv: KV, model: string, worker: string, revision: number, ttlMs: number) {
    this.#kv = kv;
    this.model = model;
    this.worker = worker;
    this.#revision = revision;
    this.#ttlMs = ttlMs;
  }

  /** Aborted once the lease is lost: whatever runs under it must stop and publish nothing. */
  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  /**
   * Renews the lease at the revision last written: true when it is still ours. False once lost:
   * the entry aged out, or another worker holds it now. Rejects when the bucket did not answer;
   * the lease is then ours until a whole TTL has passed since the last confirmed renewal.
   */
  renew(): Promise<boolean> {
    const next = this.#chain.then(() => this.#renew());
    this.#chain = next.catch(() => {});
    return next;
  }

  async #renew(): Promise<boolean> {
    if (this.#lost.signal.aborted) return false;
    try {
      this.#revision = await this.#kv.update(
        leaseKey(this.model),
        leaseValue(this.worker),
        this.#revision,
      );
      this.#renewedAt = performance.now();
      return true;
    } catch (error) {
      if (isWrongSequence(error)) {
        this.#lost.abort(new Error("the retraining lease expired or another worker holds it"));
        return false;
      }
      if (performance.now() - this.#renewedAt >= this.#ttlMs) {
        this.#lost.abort(new Error("the retraining lease could not be renewed within its TTL"));
        return false;
      }
      throw error;
    }
  }

  /** Renews every quarter TTL until released or lost; a renewal the bucket did not answer is logged. */
  keep(log: Pick<Logger, "warn">): void {
    const stop = AbortSignal.any([this.#lost.signal, this.#released.signal]);
    this.#keeping ??= (async () => {
      while (await delay(this.#ttlMs / 4, stop)) {
        await this.renew().catch((error) =>
          log.warn("retraining lease not renewed; trying again", error as Error, {
            model: this.model,
          }),
        );
      }
    })();
  }

  /** Stops renewing and frees the lease (a revision-checked delete: never another worker's). */
  async release(): Promise<void> {
    this.#released.abort();
    await this.#keeping;
    await this.#chain;
    if (this.#lost.signal.aborted) return;
    await this.#kv.delete(leaseKey(this.model), { previousSeq: this.#revision }).catch(() => {
      // Not answered: the entry ages out within a TTL.
    });
  }
}
