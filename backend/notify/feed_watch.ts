// Reads the engine's /stats on a period and records its feed conditions (silent streams, running-condition sensors in doubt, the engine out of reach) for the notification routes.
import type { Logger } from "../../telemetry/logger.ts";
import type { FeedChanges, FeedConditions, FeedObservation } from "./feed_conditions.ts";

/** The parts of the engine's `GET /stats` the watch reads (absent: the engine does not say). */
export interface FeedStats {
  silent?: { stream_id: string; last_accepted_at: string }[];
  machine_off?: {
    stream_id: string;
    reads_running?: { since: string; sensor: string; in_range: number };
  }[];
}

export interface FeedWatchOptions {
  engineUrl: string;
  /** One read of `/stats`: null when the engine answered without it; throws when out of reach. */
  read: () => Promise<FeedStats | null>;
  /** Why a read failed, in words. */
  describe: (error: unknown) => string;
  conditions: FeedConditions;
  /** Between two reads. */
  everyMs: number;
  /** How long reads must fail in a row before the engine is out of reach (a restart is not): `FEED_GRACE_MS`. */
  downAfterMs: number;
  log?: Logger;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

/** What one read of the engine shows, in the conditions' terms. */
export function observation(stats: FeedStats | null): FeedObservation {
  return {
    reachable: true,
    silent: stats?.silent,
    doubts: stats?.machine_off?.flatMap((m) =>
      m.reads_running ? [{ stream_id: m.stream_id, ...m.reads_running }] : [],
    ),
  };
}

/**
 * The watch: `start()` reads the engine every `everyMs` until `stop()` and records what changed
 * (`../notify/feed_conditions.ts`); the notification dispatcher tells the routes. The engine is
 * out of reach once its reads have failed for `downAfterMs` in a row, and only once an engine has
 * been at work for this database (reached by this backend or another, or an alert is stored), so
 * a backend run without an engine (the original main server's role) pages nobody. A failed pass
 * is logged and the next one runs.
 *
 * @example const watch = createFeedWatch({ engineUrl, read, describe, conditions, everyMs: 15_000, downAfterMs: 60_000 }); watch.start();
 */
export function createFeedWatch(options: FeedWatchOptions) {
  const { engineUrl, conditions, log } = options;
  const now = options.now ?? (() => Date.now());
  let failingSince: number | undefined;
  let reached = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  function report(changes: FeedChanges) {
    for (const c of changes.opened) {
      log?.warn("feed condition opened", {
        condition_id: c.condition_id,
        kind: c.kind,
        subject: c.subject,
        since: c.since.toISOString(),
      });
    }
    for (const c of changes.ended) {
      log?.info("feed condition ended", {
        condition_id: c.condition_id,
        kind: c.kind,
        subject: c.subject,
      });
    }
  }

  /** One read and what it changed. */
  async function pass(): Promise<FeedChanges> {
    const t = now();
    let seen: FeedObservation;
    try {
      seen = observation(await options.read());
      failingSince = undefined;
      reached = true;
    } catch (error) {
      failingSince ??= t;
      if (t - failingSince < options.downAfterMs) return { opened: [], ended: [] };
      reached ||= await conditions.engineKnown();
      if (!reached) return { opened: [], ended: [] };
      seen = { reachable: false, since: new Date(failingSince), reason: options.describe(error) };
    }
    const changes = await conditions.observe(engineUrl, seen, new Date(t));
    report(changes);
    return changes;
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass()
        .then(() => undefined)
        .catch((error) => log?.warn("feed watch pass failed", { error: (error as Error).message }))
        .finally(schedule);
    }, options.everyMs);
  }

  return {
    /** Starts the reads (once); the first comes after `everyMs`. */
    start(): void {
      if (timer || stopped) return;
      schedule();
    },
    /** Stops reading; waits for a pass in progress. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
    pass,
  };
}

export type FeedWatch = ReturnType<typeof createFeedWatch>;
