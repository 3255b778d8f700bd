// Retraining runs, one at a time: rounds every RETRAIN_EVERY_H (when above 0) and runs asked for (POST /models/{name}/retrain); the last runs kept for GET /models.
import type { RetrainAsked, RetrainRun, RetrainSchedule } from "../../contracts/models_api.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { delay } from "../_delay.ts";
import type { RetrainResult } from "./retrain_child.ts";
import type { RetrainJournal } from "./retrain_journal.ts";

/** A run that did not happen here, and why (under scale-out: another worker retrains the model). */
export interface RetrainSkipped {
  skipped: string;
}

/** Why a run asked for does not start: another one is in progress (never two at once). */
export class RetrainBusy extends Error {
  readonly model: string;
  readonly run: RetrainRun | undefined;

  constructor(model: string, run: RetrainRun | undefined) {
    super(
      `a retraining of ${model} is running${run ? ` since ${run.started_at}` : ""}; one runs at a time`,
    );
    this.name = "RetrainBusy";
    this.model = model;
    this.run = run;
  }
}

/** Runs asked for through another process (under scale-out: an ingest replica), looked for while idle. */
export interface RetrainRequests {
  /** The models among `models` with a run asked for, and who asked. */
  pending(models: string[]): Promise<{ model: string; asked: RetrainAsked }[]>;
  /** How often to look, in milliseconds. */
  everyMs: number;
}

/** setTimeout's longest wait; a longer interval is waited in pieces. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RetrainSchedulerOptions {
  /** Hours between rounds, counted from the end of the previous round; 0: no rounds, runs only when asked for. */
  everyH: number;
  /** The models served now, in the order a round retrains them. */
  models: () => string[];
  /**
   * One model's run (a child process); resolves with its outcome, or with why it did not run
   * here (nothing is recorded then); aborts at `stop`. `asked` is set on a run someone asked for.
   */
  run: (
    model: string,
    signal: AbortSignal,
    asked?: RetrainAsked,
  ) => Promise<RetrainResult | RetrainSkipped>;
  /** Runs asked for elsewhere (scale-out workers); the single process gets them through {@link RetrainScheduler.ask}. */
  requests?: RetrainRequests;
  log: Logger;
  now?: () => number;
  /**
   * Where the schedule's clock and the last runs are kept across restarts (the single process:
   * `DATA_DIR/retraining.json`); without one both start afresh with the process.
   */
  journal?: RetrainJournal;
}

interface ModelRuns {
  last?: RetrainRun;
  last_promoted?: RetrainRun;
}

/**
 * Runs the retraining of the served models, one run at a time. With `everyH` above 0, rounds: a
 * round starts `everyH` hours after the previous one ended (the first one `everyH` after
 * rounds were first on), so a round that runs long never makes the next start at once and the
 * host is never retraining all the time; within a round the models go one after the other. With
 * a `journal` that clock and the last runs outlive a restart: an engine restarted more often than
 * `everyH` still retrains, and one restarted past a due round runs it at once. A run the process
 * did not see end (killed meanwhile) is shown as failed, saying so. A run asked for
 * ({@link ask}, or `requests`) starts at once when none is in progress and is refused otherwise;
 * a round that comes due meanwhile waits for it to end. A run's failure is logged and kept; it
 * never stops the rounds or scoring.
 *
 * @example
 * const s = new RetrainScheduler({ everyH: 24, models: () => ["pump"], run, log });
 * s.start(); s.ask("pump", { by: "ana", reason: "moved", at }); s.status("pump"); await s.stop();
 */
export class RetrainScheduler {
  #o: RetrainSchedulerOptions;
  #now: () => number;
  #runs = new Map<string, ModelRuns>();
  #nextAt: number | null = null;
  #stop = new AbortController();
  #loops: Promise<void>[] | undefined;
  /** The run in progress, scheduled or asked for: the one lock both take. */
  #current: { model: string; done: Promise<void> } | undefined;
  /** When the schedule's clock started (the last round's end), once restored. */
  #since: number | undefined;
  /** The journal read back (every loop waits for it). */
  #restored: Promise<void> | undefined;
  /** Journal writes, one after the other in the order they were asked for. */
  #saving: Promise<void> = Promise.resolve();

  constructor(options: RetrainSchedulerOptions) {
    if (!(options.everyH >= 0)) {
      throw new RangeError(`'RETRAIN_EVERY_H' must be 0 or above, got ${options.everyH}`);
    }
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Starts the rounds (the first one interval from now) and the look-out for requests, when configured. */
  start(): void {
    const { everyH, requests } = this.#o;
    this.#restored ??= this.#restore();
    this.#loops ??= [
      ...(everyH > 0 ? [this.#rounds()] : []),
      ...(requests ? [this.#requests(requests)] : []),
    ];
  }

  /** Stops: a run in progress is stopped (its child killed) and awaited. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...(this.#loops ?? []), this.#current?.done]);
    await this.#saving;
  }

  /**
   * Starts a run of `model` now, for `asked.by`: returns the run (outcome `running`) at once; it
   * goes on in the background and ends in {@link status} like a round's run. Throws
   * {@link RetrainBusy} while a run (of any model) is in progress, and an `Error` once stopped.
   */
  ask(model: string, asked: RetrainAsked): RetrainRun {
    if (this.#stop.signal.aborted) throw new Error("retraining has stopped: the engine shuts down");
    const current = this.#current;
    if (current) throw new RetrainBusy(current.model, this.#runs.get(current.model)?.last);
    void this.#exclusive(model, asked);
    // Set before the run's first await.
    return this.#runs.get(model)?.last as RetrainRun;
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

  /** Runs `model` holding the lock; resolves when the run has ended (never rejects). */
  #exclusive(model: string, asked?: RetrainAsked): Promise<void> {
    const done: Promise<void> = this.#runOne(model, this.#stop.signal, asked).finally(() => {
      if (this.#current?.done === done) this.#current = undefined;
    });
    this.#current = { model, done };
    return done;
  }

  async #rounds(): Promise<void> {
    const signal = this.#stop.signal;
    const everyMs = this.#o.everyH * 3_600_000;
    await this.#restored;
    while (!signal.aborted) {
      const now = this.#now();
      this.#nextAt = Math.max(now, (this.#since ?? now) + everyMs);
      for (let left = this.#nextAt - now; left > 0; left -= MAX_TIMER_MS) {
        if (!(await delay(Math.min(left, MAX_TIMER_MS), signal))) return;
      }
      this.#nextAt = null;
      for (const model of this.#o.models()) {
        // A run asked for goes on; the round's waits until it has ended.
        while (this.#current) await this.#current.done;
        if (signal.aborted) return;
        await this.#exclusive(model);
      }
      if (signal.aborted) return;
      this.#since = this.#now();
      this.#save();
    }
  }

  /**
   * Reads the journal back: the schedule's clock (when rounds were first on, the journal starts
   * it now) and each model's last runs, a run still `running` there being one this process did
   * not see end. Never throws: without it the schedule starts afresh.
   */
  async #restore(): Promise<void> {
    const journal = this.#o.journal;
    const saved = await journal?.load().catch((error: unknown) => {
      this.#o.log.warn(
        "retraining journal cannot be read; the schedule starts afresh",
        error as Error,
      );
      return undefined;
    });
    for (const [model, runs] of Object.entries(saved?.models ?? {})) {
      // A run asked for since the start is newer than anything saved.
      if (this.#runs.has(model)) continue;
      const last = runs.last;
      this.#runs.set(model, {
        ...runs,
        ...(last?.outcome === "running"
          ? {
              last: {
                ...last,
                outcome: "failed" as const,
                error:
                  "the engine stopped during this run (killed or restarted), so its end was not seen; the model's activations say whether it promoted a version",
              },
            }
          : {}),
      });
    }
    const since = saved?.since ? Date.parse(saved.since) : undefined;
    this.#since = since ?? this.#now();
    if (journal && this.#o.everyH > 0 && since === undefined) this.#save();
  }

  /** Queues a journal write of the state now; a failure is logged and the next write tries again. */
  #save(): void {
    const journal = this.#o.journal;
    if (!journal) return;
    this.#saving = this.#saving.then(async () => {
      const models = Object.fromEntries(this.#runs);
      const since = this.#since === undefined ? null : new Date(this.#since).toISOString();
      try {
        await journal.save({ since: this.#o.everyH > 0 ? since : null, models });
      } catch (error) {
        this.#o.log.warn(
          "retraining journal cannot be written; the schedule goes on",
          error as Error,
        );
      }
    });
  }

  async #requests(requests: RetrainRequests): Promise<void> {
    const signal = this.#stop.signal;
    let failing = false;
    while (await delay(requests.everyMs, signal)) {
      if (this.#current) continue;
      let pending: { model: string; asked: RetrainAsked }[];
      try {
        pending = await requests.pending(this.#o.models());
        failing = false;
      } catch (error) {
        // Logged once until they can be read again.
        if (!failing) {
          this.#o.log.warn("retraining requests cannot be read; trying again", error as Error);
        }
        failing = true;
        continue;
      }
      for (const { model, asked } of pending) {
        if (signal.aborted || this.#current) break;
        await this.#exclusive(model, asked);
      }
    }
  }

  async #runOne(model: string, signal: AbortSignal, asked?: RetrainAsked): Promise<void> {
    const { log } = this.#o;
    const what = asked ? "requested retraining" : "scheduled retraining";
    const runs = this.#runs.get(model) ?? {};
    this.#runs.set(model, runs);
    const started = this.#now();
    const run: RetrainRun = {
      started_at: new Date(started).toISOString(),
      finished_at: null,
      outcome: "running",
      reasons: [],
      ...(asked ? { requested: asked } : {}),
    };
    const before = runs.last;
    runs.last = run;
    this.#save();
    log.info(`${what} started`, {
      model,
      ...(asked ? { by: asked.by, reason: asked.reason } : {}),
    });
    let result: RetrainResult | RetrainSkipped;
    try {
      result = await this.#o.run(model, signal, asked);
    } catch (error) {
      result = { outcome: "failed", reasons: [], error: (error as Error).message };
    }
    if ("skipped" in result) {
      runs.last = before;
      this.#save();
      log.info(`${what} skipped`, { model, reason: result.skipped });
      return;
    }
    const finished = this.#now();
    const done: RetrainRun = { ...run, ...result, finished_at: new Date(finished).toISOString() };
    runs.last = done;
    if (done.decision === "promoted") runs.last_promoted = done;
    this.#save();
    const fields = { model, duration_ms: finished - started };
    if (done.outcome === "failed") {
      log.error(`${what} failed; scoring goes on with the active version`, {
        ...fields,
        error: done.error,
      });
    } else {
      log.info(`${what} decided`, {
        ...fields,
        decision: done.decision,
        candidate_version: done.candidate_version,
        activated: done.activated ?? false,
        reasons: done.reasons,
      });
    }
  }
}
