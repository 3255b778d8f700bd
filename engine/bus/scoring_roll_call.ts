// Scoring under scale-out: an ingest replica asks every live worker for its scoring figures (one NATS request, answers gathered for a bounded time) for its `/stats`.
import type { KV } from "@nats-io/kv";
import type { Msg, NatsConnection, QueuedIterator } from "@nats-io/nats-core";
import * as v from "valibot";
import type { Logger } from "../../telemetry/logger.ts";
import { delay } from "../_delay.ts";
import type { StatsSnapshot } from "../stats.ts";

/** The scoring part of a worker's `/stats`, as the worker answers a roll call. */
export type ScoringFigures = { partitions: number[]; frames: { scored: number } } & Pick<
  StatsSnapshot,
  "batches" | "queue" | "latency_ms" | "inference_ms" | "alerts"
>;

/** One worker's answer: its figures, who it is and when it took them (listed in a replica's `/stats`). */
export type WorkerScoring = { worker: string; at: string } & ScoringFigures;

/** The deployment's scoring, combined from every worker's ({@link mergeScoring}). */
export type MergedScoring = { scored: number } & Pick<
  StatsSnapshot,
  "batches" | "latency_ms" | "inference_ms" | "alerts"
>;

// A figure a worker could not compute (a NaN sample turns into null in JSON) reads 0.
const figure = v.fallback(v.pipe(v.number(), v.finite(), v.minValue(0)), 0);
const answerSchema = v.object({
  worker: v.pipe(v.string(), v.minLength(1)),
  at: v.string(),
  partitions: v.array(v.number()),
  frames: v.object({ scored: figure }),
  batches: figure,
  queue: v.object({ depth: figure, capacity: figure }),
  latency_ms: v.object({ count: figure, p50: figure, p90: figure, p99: figure, max: figure }),
  inference_ms: v.object({
    count: figure,
    p50: figure,
    p99: figure,
    by_batch_size: v.record(v.string(), figure),
  }),
  alerts: v.object({ generated: figure, delivered: figure, outbox: figure }),
});

/**
 * Combines workers' figures: counts summed; each time figure (`p50`, `p90`, `p99`, `max`, the
 * mean inference time per batch size) the highest worker's. Samples are not merged, so a
 * percentile here is an upper bound of the deployment's: at least that share of every worker's
 * samples, hence of all of them, lies at or below it.
 *
 * @example
 * mergeScoring([a, b]).latency_ms; // { count: a.count + b.count, p99: max(a.p99, b.p99), ... }
 */
export function mergeScoring(workers: readonly ScoringFigures[]): MergedScoring {
  const highest = (pick: (w: ScoringFigures) => number) => Math.max(0, ...workers.map(pick));
  const sum = (pick: (w: ScoringFigures) => number) => workers.reduce((n, w) => n + pick(w), 0);
  const bySize: Record<string, number> = {};
  for (const w of workers) {
    for (const [size, mean] of Object.entries(w.inference_ms.by_batch_size)) {
      bySize[size] = Math.max(bySize[size] ?? 0, mean);
    }
  }
  return {
    scored: sum((w) => w.frames.scored),
    batches: sum((w) => w.batches),
    latency_ms: {
      count: sum((w) => w.latency_ms.count),
      p50: highest((w) => w.latency_ms.p50),
      p90: highest((w) => w.latency_ms.p90),
      p99: highest((w) => w.latency_ms.p99),
      max: highest((w) => w.latency_ms.max),
    },
    inference_ms: {
      count: sum((w) => w.inference_ms.count),
      p50: highest((w) => w.inference_ms.p50),
      p99: highest((w) => w.inference_ms.p99),
      by_batch_size: Object.fromEntries(
        Object.entries(bySize).sort((a, b) => Number(a[0]) - Number(b[0])),
      ),
    },
    alerts: {
      generated: sum((w) => w.alerts.generated),
      delivered: sum((w) => w.alerts.delivered),
      outbox: sum((w) => w.alerts.outbox),
    },
  };
}

export interface ScoringRollCallOptions {
  nc: NatsConnection;
  /** `NATS_STREAM`: the roll call's subject is `<prefix>.scoring` (outside the frame stream's `<prefix>.p.*`). */
  prefix: string;
  log: Pick<Logger, "warn" | "info">;
  /** How long {@link ScoringRollCall.gather} waits for the live workers' answers (default 1 s). */
  waitMs?: number;
}

/**
 * The workers' scoring figures for an ingest replica's `/stats`. A worker {@link answer}s every
 * roll call on `<prefix>.scoring` with its figures, taken when asked (the cost of a single
 * process's `/stats`, paid only when someone reads one). A replica {@link follow}s the workers'
 * heartbeats (`w.<id>` in the lease bucket) to know how many answers to wait for, and
 * {@link gather}s them: one request, answers taken until every live worker answered or `waitMs`
 * passed, so a worker that is gone (its heartbeat not yet expired) or frozen costs a `/stats` at
 * most `waitMs`. A live worker that did not answer in time is listed with its last answer (its
 * `at` says when); a worker whose heartbeat ended (it left, or died a lease period ago) is dropped.
 * Neither side ever throws: NATS not answering is logged at warn, once a spell.
 *
 * @example
 * const call = new ScoringRollCall({ nc, prefix: "FRAMES", log });
 * call.answer("worker-a", () => figures(), stop.signal); // a worker
 * void call.follow(leasesKv, stop.signal); const workers = await call.gather(); // a replica
 */
export class ScoringRollCall {
  readonly #o: ScoringRollCallOptions & { waitMs: number };
  readonly #subject: string;
  /** Worker id → its heartbeat's expiry (epoch ms), from the lease bucket. */
  readonly #heartbeats = new Map<string, number>();
  /** Each worker's last answer, kept while it is live. */
  readonly #last = new Map<string, WorkerScoring>();
  #gathering: Promise<WorkerScoring[]> | undefined;
  #failing = false;
  /** Workers whose answer was malformed, warned of once each. */
  #malformed = new Set<string>();

  constructor(options: ScoringRollCallOptions) {
    const waitMs = options.waitMs ?? 1000;
    if (!(waitMs >= 1)) throw new RangeError(`'waitMs' must be at least 1, got ${waitMs}`);
    this.#o = { ...options, waitMs };
    this.#subject = `${options.prefix}.scoring`;
  }

  /** Workers whose heartbeat has not expired, as last seen. */
  get liveWorkers(): number {
    return this.#live().size;
  }

  #live(): Set<string> {
    const now = Date.now();
    const live = new Set<string>();
    for (const [id, expires] of this.#heartbeats) if (expires > now) live.add(id);
    return live;
  }

  /** Answers every roll call with `figures()` as worker `worker` until `signal` aborts. */
  answer(worker: string, figures: () => ScoringFigures, signal: AbortSignal): void {
    if (signal.aborted) return;
    const log = this.#o.log;
    const sub = this.#o.nc.subscribe(this.#subject, {
      callback: function answerRollCall(error, msg) {
        if (error) return;
        try {
          const answer: WorkerScoring = { worker, at: new Date().toISOString(), ...figures() };
          msg.respond(JSON.stringify(answer));
        } catch (cause) {
          log.warn("scoring roll call not answered", cause as Error, { worker });
        }
      },
    });
    signal.addEventListener("abort", () => sub.unsubscribe(), { once: true });
  }

  /**
   * Follows the workers' heartbeats in `leases` (the lease bucket, keys `w.<id>`) until `signal`
   * aborts, watching again after a failure. Never rejects.
   */
  async follow(leases: KV, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const watch = await leases.watch({ key: "w.*" });
        const stop = () => watch.stop();
        signal.addEventListener("abort", stop, { once: true });
        try {
          for await (const entry of watch) {
            const id = entry.key.slice(2);
            let expires = 0;
            if (entry.operation === "PUT") {
              try {
                expires = Number((JSON.parse(entry.string()) as { expires: number }).expires) || 0;
              } catch {
                expires = 0;
              }
            }
            if (expires > 0) this.#heartbeats.set(id, expires);
            else this.#heartbeats.delete(id);
          }
        } finally {
          signal.removeEventListener("abort", stop);
        }
      } catch (error) {
        if (!signal.aborted) this.#o.log.warn("worker heartbeat watch failed; restarting", error);
      }
      await delay(500, signal);
    }
  }

  /**
   * Every live worker's figures, sorted by worker id: one roll call at a time (callers meanwhile
   * share it), within `waitMs`. Never rejects.
   */
  gather(): Promise<WorkerScoring[]> {
    this.#gathering ??= this.#ask().finally(() => {
      this.#gathering = undefined;
    });
    return this.#gathering;
  }

  async #ask(): Promise<WorkerScoring[]> {
    const live = this.#live();
    const answered = new Set<string>();
    if (live.size > 0) {
      // The client's own timer ends the answers at `waitMs`; the deadline is the guarantee.
      const deadline = AbortSignal.timeout(this.#o.waitMs);
      let replies: QueuedIterator<Msg> | undefined;
      const cut = () => replies?.stop();
      deadline.addEventListener("abort", cut, { once: true });
      try {
        replies = (await this.#o.nc.requestMany(this.#subject, "", {
          strategy: "count",
          maxMessages: live.size,
          maxWait: this.#o.waitMs,
        })) as QueuedIterator<Msg>;
        if (deadline.aborted) replies.stop();
        for await (const msg of replies) {
          const answer = this.#parse(msg.string());
          if (!answer) continue;
          answered.add(answer.worker);
          this.#last.set(answer.worker, answer);
        }
        if (this.#failing) this.#o.log.info("workers answer the scoring roll call again");
        this.#failing = false;
      } catch (error) {
        // Nobody subscribed: the workers heard of are gone, their heartbeats not yet expired.
        if ((error as Error).name === "NoResponders") this.#failing = false;
        else if (!this.#failing) {
          this.#o.log.warn("scoring roll call failed; the workers' last answers stand", error);
          this.#failing = true;
        }
      } finally {
        deadline.removeEventListener("abort", cut);
      }
    }
    for (const id of this.#last.keys()) {
      if (!live.has(id) && !answered.has(id)) this.#last.delete(id);
    }
    return [...this.#last.values()].sort((a, b) =>
      a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0,
    );
  }

  #parse(text: string): WorkerScoring | undefined {
    let issue = "not JSON";
    try {
      const parsed = v.safeParse(answerSchema, JSON.parse(text));
      if (parsed.success) return parsed.output;
      issue = v.summarize(parsed.issues);
    } catch {
      // not JSON: warned of below
    }
    const key = text.slice(0, 80);
    if (!this.#malformed.has(key)) {
      this.#malformed.add(key);
      if (this.#malformed.size > 64) this.#malformed.clear();
      this.#o.log.warn("a worker's scoring answer is malformed; skipped", { issue });
    }
    return undefined;
  }
}
