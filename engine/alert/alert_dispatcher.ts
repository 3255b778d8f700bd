// Alert delivery off the scoring path: outbox first, then bounded concurrent sends, then later rounds.
import type { Logger } from "../../telemetry/logger.ts";
import type { EngineMetrics } from "../../telemetry/metrics.ts";
import type { AlertRecord, AlertSender } from "./alert_sender.ts";
import type { Outbox } from "./outbox.ts";
import { backoffDelay } from "./retry_policy.ts";

export interface AlertDispatcherOptions {
  outbox: Outbox;
  send: AlertSender;
  /** Deliveries in flight at most (`ALERT_CONCURRENCY`). */
  concurrency: number;
  /** Undelivered alerts at which `full` turns true (`OUTBOX_MAX_ALERTS`). */
  maxAlerts: number;
  /** Bytes of undelivered alerts at which `full` turns true (`OUTBOX_MAX_BYTES`; no bound when absent). */
  maxBytes?: number;
  /** First wait before a new round for an alert whose attempts were exhausted. */
  roundBaseMs: number;
  /** Longest wait between rounds. */
  roundMaxMs: number;
  log: Logger;
  metrics?: Pick<EngineMetrics, "alertsFailed" | "alertsRejected">;
  random?: () => number;
}

/** Counters since start: alerts made durable, delivered, parked after a 4xx, rounds exhausted. */
export interface DispatchCounts {
  generated: number;
  delivered: number;
  rejected: number;
  exhausted: number;
}

/**
 * Owns every alert from creation to delivery. `submit` makes a batch's alerts durable (one
 * fsync) before any is sent, then queues them; up to `concurrency` deliveries run at once, so a
 * slow backend never slows scoring. When a delivery exhausts its retries the alert stays in the
 * outbox and gets another round later, with capped exponential backoff. An alert the backend
 * rejects (4xx other than 408/425/429) is logged and parked in the outbox: it is retried at the
 * next start, after the cause (say, a signing secret mismatch) has been fixed.
 */
export class AlertDispatcher {
  readonly counts: DispatchCounts = { generated: 0, delivered: 0, rejected: 0, exhausted: 0 };
  readonly #o: AlertDispatcherOptions;
  readonly #waiting: AlertRecord[] = [];
  readonly #rounds = new Map<string, number>();
  /** Since when (`performance.now()`) deliveries have been failing: one warning per outage. */
  #failingSince: number | undefined;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #stop = new AbortController();
  #active = 0;
  #idle: (() => void) | undefined;

  constructor(options: AlertDispatcherOptions) {
    const { concurrency, maxAlerts, roundBaseMs, roundMaxMs } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`'ALERT_CONCURRENCY' must be a positive integer, got ${concurrency}`);
    }
    if (!Number.isInteger(maxAlerts) || maxAlerts < 1) {
      throw new RangeError(`'OUTBOX_MAX_ALERTS' must be a positive integer, got ${maxAlerts}`);
    }
    if (!(roundBaseMs > 0) || !(roundMaxMs >= roundBaseMs)) {
      throw new RangeError(`'roundBaseMs' must be > 0 and 'roundMaxMs' at least it`);
    }
    this.#o = options;
  }

  /** Undelivered alerts, in flight or not. */
  get backlog(): number {
    return this.#o.outbox.size;
  }

  /** Bytes of the undelivered alerts. */
  get backlogBytes(): number {
    return this.#o.outbox.bytes;
  }

  /**
   * True when the outbox holds `maxAlerts` undelivered alerts or `maxBytes` of them: new frames
   * should wait.
   */
  get full(): boolean {
    const { outbox, maxAlerts, maxBytes = Number.POSITIVE_INFINITY } = this.#o;
    return outbox.size >= maxAlerts || outbox.bytes >= maxBytes;
  }

  /** Queues every alert the outbox kept from an earlier run. */
  start(): void {
    const kept = this.#o.outbox.pending();
    if (kept.length)
      this.#o.log.info("redelivering alerts kept in the outbox", { alerts: kept.length });
    for (const record of kept) this.#waiting.push(record);
    this.#pump();
  }

  /** Makes `records` durable (one fsync for all), then queues them for delivery. */
  async submit(records: readonly AlertRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.#o.outbox.append(records);
    this.counts.generated += records.length;
    for (const record of records) this.#waiting.push(record);
    this.#pump();
  }

  /**
   * Submits alerts that may not have reached the outbox before a crash (those kept with the
   * incident state), leaving out the ones it holds (`start` queued them) and the ones it saw
   * delivered: each is delivered once, not again at every restart.
   */
  resubmit(records: readonly AlertRecord[]): Promise<void> {
    const { outbox } = this.#o;
    return this.submit(records.filter((r) => !outbox.has(r.id) && !outbox.wasDelivered(r.id)));
  }

  /**
   * Waits until nothing is queued or in flight, or until `signal` aborts; then stops: deliveries
   * still running are cut short and what is undelivered stays in the outbox for the next start.
   */
  async drain(signal: AbortSignal): Promise<void> {
    if ((this.#waiting.length > 0 || this.#active > 0) && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.#idle = undefined;
          resolve();
        };
        this.#idle = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
    this.close();
  }

  /** Stops delivering at once; undelivered alerts stay in the outbox. */
  close(): void {
    this.#stop.abort();
    this.#waiting.length = 0;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #pump(): void {
    while (
      this.#active < this.#o.concurrency &&
      this.#waiting.length > 0 &&
      !this.#stop.signal.aborted
    ) {
      const record = this.#waiting.shift()!;
      this.#active++;
      this.#deliver(record).finally(() => {
        this.#active--;
        this.#pump();
        if (this.#active === 0 && this.#waiting.length === 0) this.#idle?.();
      });
    }
  }

  async #deliver(record: AlertRecord): Promise<void> {
    const { log } = this.#o;
    const result = await this.#o.send(record, this.#stop.signal);
    const fields = {
      alert_id: record.id,
      attempts: result.attempts,
      status: result.status,
      backlog: this.backlog,
    };
    if (result.outcome === "delivered") {
      this.counts.delivered++;
      this.#rounds.delete(record.id);
      if (this.#failingSince !== undefined) {
        log.info("alert delivery works again", {
          failing_ms: Math.round(performance.now() - this.#failingSince),
          backlog: this.backlog,
        });
        this.#failingSince = undefined;
      }
      await this.#o.outbox.delivered(record.id).catch((error) => {
        log.error("could not mark an alert delivered (it will be sent again)", error, fields);
      });
    } else if (result.outcome === "rejected") {
      this.counts.rejected++;
      this.#o.metrics?.alertsRejected.add(1, { status: result.status ?? 0 });
      const message = "backend rejected an alert; kept in the outbox until restart";
      // A refusal is a status, not an error: its body says why.
      const why = { ...fields, ...(result.reason ? { reason: result.reason } : {}) };
      if (result.error) log.error(message, result.error, why);
      else log.error(message, why);
    } else if (!this.#stop.signal.aborted) {
      this.counts.exhausted++;
      const round = (this.#rounds.get(record.id) ?? 0) + 1;
      this.#rounds.set(record.id, round);
      // Counted once per alert, not per round: a long outage would count each alert hundreds of times.
      if (round === 1) this.#o.metrics?.alertsFailed.add(1);
      const wait =
        this.#o.roundBaseMs +
        backoffDelay(round, this.#o.roundBaseMs, this.#o.roundMaxMs, this.#o.random);
      const why = result.error ? [result.error] : [];
      const line = { ...fields, round, next_round_ms: wait };
      // One warning when deliveries start failing, one line when they work again: a backend
      // down for a day would otherwise log a line per kept alert per round (hundreds of
      // thousands). Each alert's rounds are at debug.
      if (this.#failingSince === undefined) {
        this.#failingSince = performance.now();
        log.warn(
          "alert delivery failing; alerts kept in the outbox and tried again in rounds",
          ...why,
          line,
        );
      } else log.debug("alert delivery failed; kept in the outbox for another round", ...why, line);
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#waiting.push(record);
        this.#pump();
      }, wait);
      this.#timers.add(timer);
    }
  }
}
