// Scheduled retraining: every RETRAIN_EVERY_H, each served model in turn, one run at a time; the last runs kept for GET /models.
import type { RetrainRun, RetrainSchedule } from "../../contracts/models_api.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { delay } from "../_delay.ts";
import type { RetrainResult } from "./retrain_child.ts";

/** A run that did not happen here, and why (under scale-out: another worker retrains the model). */
export interface RetrainSkipped {
  skipped: string;
}

/** setTimeout's longest wait; a longer interval is waited in pieces. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RetrainSchedulerOptions {
  /** Hours between rounds, counted from the end of the previous round (> 0). */
  everyH: number;
  /** The models served now, in the order a round retrains them. */
  models: () => string[];
  /**
   * One model's run (a child process); resolves with its outcome, or with why it did not run
   * here (nothing is recorded then); aborts at `stop`.
   */
  run: (model: string, signal: AbortSignal) => Promise<RetrainResult | RetrainSkipped>;
  log: Logger;
  now?: () => number;
}

interface ModelRuns {
  last?: RetrainRun;
  last_promoted?: RetrainRun;
}

/**
 * Runs rounds of retraining. A round starts `everyH` hours after the previous one ended (the
 * first one `everyH` after `start`), so a round that runs long never makes the next start at
 * once and the host is never retraining all the time. Within a round the models go one after
 * the other: never two runs at once. A run's failure is logged and kept; it never stops the
 * round, the schedule or scoring.
 *
 * @example
 * const s = new RetrainScheduler({ everyH: 24, models: () => ["pump"], run, log });
 * s.start(); s.status("pump"); await s.stop();
 */
export class RetrainScheduler {
  #o: RetrainSchedulerOptions;
  #now: () => number;
  #runs = new Map<string, ModelRuns>();
  #nextAt: number | null = null;
  #stop = new AbortController();
  #rounds: Promise<void> | undefined;

  constructor(options: RetrainSchedulerOptions) {
    if (!(options.everyH > 0)) {
      throw new RangeError(`'RETRAIN_EVERY_H' must be above 0 to schedule, got ${options.everyH}`);
    }
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Starts the schedule; the first round comes one interval from now. */
  start(): void {
    this.#rounds ??= this.#loop();
  }

  /** Stops the schedule: a run in progress is stopped (its child killed) and awaited. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#rounds;
  }

  /** What `GET /models` shows of `model`'s retraining. */
  status(model: string): RetrainSchedule {
    const runs = this.#runs.get(model) ?? {};
    return {
      every_h: this.#o.everyH,
      next_at: this.#nextAt === null ? null : new Date(this.#nextAt).toISOString(),
      ...(runs.last ? { last: runs.last } : {}),
      ...(runs.last_promoted ? { last_promoted: runs.last_promoted } : {}),
    };
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    const everyMs = this.#o.everyH * 3_600_000;
    while (!signal.aborted) {
      this.#nextAt = this.#now() + everyMs;
      for (let left = everyMs; left > 0; left -= MAX_TIMER_MS) {
        if (!(await delay(Math.min(left, MAX_TIMER_MS), signal))) return;
      }
      this.#nextAt = null;
      for (const model of this.#o.models()) {
        if (signal.aborted) return;
        await this.#runOne(model, signal);
      }
    }
  }

  async #runOne(model: string, signal: AbortSignal): Promise<void> {
    const { log } = this.#o;
    const runs = this.#runs.get(model) ?? {};
    this.#runs.set(model, runs);
    const started = this.#now();
    const run: RetrainRun = {
      started_at: new Date(started).toISOString(),
      finished_at: null,
      outcome: "running",
      reasons: [],
    };
    const before = runs.last;
    runs.last = run;
    log.info("scheduled retraining started", { model });
    let result: RetrainResult | RetrainSkipped;
    try {
      result = await this.#o.run(model, signal);
    } catch (error) {
      result = { outcome: "failed", reasons: [], error: (error as Error).message };
    }
    if ("skipped" in result) {
      runs.last = before;
      log.info("scheduled retraining skipped", { model, reason: result.skipped });
      return;
    }
    const finished = this.#now();
    const done: RetrainRun = { ...run, ...result, finished_at: new Date(finished).toISOString() };
    runs.last = done;
    if (done.decision === "promoted") runs.last_promoted = done;
    const fields = { model, duration_ms: finished - started };
    if (done.outcome === "failed") {
      log.error("scheduled retraining failed; scoring goes on with the active version", {
        ...fields,
        error: done.error,
      });
    } else {
      log.info("scheduled retraining decided", {
        ...fields,
        decision: done.decision,
        candidate_version: done.candidate_version,
        activated: done.activated ?? false,
        reasons: done.reasons,
      });
    }
  }
}
