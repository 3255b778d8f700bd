// Makes the frame stream and buckets again when the server has lost them (restarted without its store).
import type { Logger } from "../../telemetry/logger.ts";

/**
 * What the client says when a stream is not there: `StreamNotFoundError` from the JetStream API,
 * `JetStreamNotEnabled` when nothing answers a publish to a stream's subject (no stream listens;
 * a server without JetStream says the same, and repairing it then fails, throttled).
 */
const MISSING = new Set(["StreamNotFoundError", "JetStreamNotEnabled"]);

/** The first repair comes at once; another one at most this often while they are still missing. */
export const REPAIR_EVERY_MS = 1000;

/** Whether `error` says the frame stream or a bucket (a KV bucket is a stream) is missing. */
export function saysMissing(error: unknown): boolean {
  return error instanceof Error && MISSING.has(error.name);
}

/** How the repair stands, for `/stats`. */
export interface RepairReport {
  /** Something was found missing and is not made again yet. */
  repairing: boolean;
  /** Since when (ISO), while repairing. */
  since?: string;
  /** Times the stream and buckets were made again since start. */
  repairs: number;
}

/**
 * The stream and buckets are created once, at start. A server restarted without its store (a
 * new container without its volume) has none of them, and nothing made them again: ingest
 * answered 503 and the workers read nothing for ever. Each role hands every error of a publish,
 * a read or a KV call to {@link noticed}; one that says a stream is missing runs `create` (the
 * same idempotent set-up as at start) at once, and again at most every `everyMs` while it fails.
 * One warning when it starts, one line when it worked.
 *
 * @example
 * const repair = new BusRepair({ create: () => bus.repair(), log });
 * try { await bus.js.publish(subject, payload); } catch (error) { repair.noticed(error); throw error; }
 */
export class BusRepair {
  readonly #create: () => Promise<void>;
  readonly #log: Logger;
  readonly #everyMs: number;
  #since: number | undefined;
  #lastAt = Number.NEGATIVE_INFINITY;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #repairs = 0;

  constructor(options: { create: () => Promise<void>; log: Logger; everyMs?: number }) {
    this.#create = options.create;
    this.#log = options.log;
    this.#everyMs = options.everyMs ?? REPAIR_EVERY_MS;
  }

  /** True from an error saying something is missing until it was made again. */
  get repairing(): boolean {
    return this.#since !== undefined;
  }

  report(): RepairReport {
    return {
      repairing: this.repairing,
      ...(this.#since === undefined ? {} : { since: new Date(this.#since).toISOString() }),
      repairs: this.#repairs,
    };
  }

  /** Hears of an error; one that says a stream or bucket is missing starts a repair. */
  noticed(error: unknown): void {
    if (this.#closed || !saysMissing(error)) return;
    if (this.#since === undefined) {
      this.#since = Date.now();
      this.#log.warn(
        "the frame stream or a bucket is missing on the NATS server (restarted without its store?); making them again",
        error as Error,
      );
    }
    this.#next();
  }

  /** No repair after this (the process stops). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #next(): void {
    if (this.#closed || this.#running || this.#timer || this.#since === undefined) return;
    const wait = this.#lastAt + this.#everyMs - performance.now();
    if (wait > 0) {
      this.#timer = setTimeout(
        function repairLater(this: BusRepair) {
          this.#timer = undefined;
          this.#next();
        }.bind(this),
        wait,
      );
      this.#timer.unref?.();
      return;
    }
    this.#running = true;
    this.#lastAt = performance.now();
    const since = this.#since;
    this.#create().then(
      () => {
        this.#running = false;
        this.#repairs++;
        this.#since = undefined;
        this.#log.info("the frame stream and buckets are made again", {
          missing_ms: Date.now() - since,
        });
      },
      (error) => {
        this.#running = false;
        this.#log.debug("making the frame stream and buckets again failed; trying again", {
          error: (error as Error).message,
        });
        this.#next();
      },
    );
  }
}
