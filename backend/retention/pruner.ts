// Deletes what the retention horizons let go, in small batches that leave room for ingest between them.
import type { Logger } from "../../telemetry/logger.ts";
import type { Database } from "../db/database.ts";
import {
  analyze,
  deadRows,
  deleteAlertBatch,
  deleteConditionBatch,
  deleteIncidentBatch,
  oldestKept,
  PRUNED_TABLES,
  type PrunedTable,
  recordStatus,
  vacuum,
} from "./prune_queries.ts";

const DAY_MS = 86_400_000;
// Between two batches the pruner waits as long as the last one took (at least this), so it holds
// at most about half of PGlite's single connection and ingest's statements slip in between.
const MIN_PAUSE_MS = 10;
/**
 * PGlite: how often at most a run refreshes the planner's statistics (`ANALYZE`) of the pruned
 * tables it does not vacuum.
 */
export const ANALYZE_EVERY_MS = 3_600_000;
/**
 * PGlite: a pruned table is vacuumed once its dead rows pass this many plus
 * {@link VACUUM_SCALE_FACTOR} of its rows, as PostgreSQL's autovacuum decides with its defaults
 * (`autovacuum_vacuum_threshold`, `autovacuum_vacuum_scale_factor`).
 */
export const VACUUM_THRESHOLD = 50;
export const VACUUM_SCALE_FACTOR = 0.2;

export interface PrunerOptions {
  database: Pick<Database, "sql" | "kind">;
  /** Days an alert is kept with its evidence after it was received; 0 keeps alerts forever. */
  alertsDays: number;
  /**
   * Days a resolved incident is kept with its timeline and evidence; 0 forever. One with a
   * verdict or an acknowledgement is kept for good (operator records are never erased). An
   * ended feed condition goes on the same horizon, never within a week of its end.
   */
  incidentsDays: number;
  /** Milliseconds from the end of one run to the start of the next (`start()` only). */
  everyMs: number;
  /** Alerts, or incidents, per statement. */
  batchSize: number;
  /** Milliseconds since the epoch. */
  now?: () => number;
  log?: Logger;
  /** Called after every run, failed ones included. */
  onRun?: (run: PruneRun) => void;
}

/** One run: what it deleted, how long it took, and what is kept now. */
export interface PruneRun {
  started_at: string;
  finished_at: string;
  duration_ms: number;
  alerts: number;
  alert_features: number;
  incidents: number;
  notifications: number;
  /** Ended feed conditions (`feed_condition`); their messages count in `notifications`. */
  conditions: number;
  oldest_alert_at: string | null;
  oldest_incident_at: string | null;
  /**
   * PGlite's upkeep after the run: `vacuum` (the tables in `vacuumed` had enough dead rows, see
   * {@link VACUUM_THRESHOLD}: their space made reusable, their statistics refreshed), `analyze`
   * (statistics only, at most every {@link ANALYZE_EVERY_MS}), or null (none due; PostgreSQL's
   * autovacuum does its own).
   */
  maintenance: "vacuum" | "analyze" | null;
  /** The tables this run vacuumed, in {@link PRUNED_TABLES} order; empty unless `vacuum`. */
  vacuumed: PrunedTable[];
  /** Why the run stopped early; the counts are what it deleted before. */
  error: string | null;
}

export type Pruner = ReturnType<typeof createPruner>;

/**
 * Waits `ms`, or until `signal` aborts; never rejects. (Not `AbortSignal.any` with
 * `AbortSignal.timeout`: Node 20 may collect that pair before it fires, and the wait never ends.)
 */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * The retention pruner. `runOnce()` deletes alerts received more than `alertsDays` ago, then
 * incidents resolved more than `incidentsDays` ago (never open ones), then feed conditions that
 * ended as long ago and over a week ago (never open ones), each in batches of `batchSize`, and
 * records the run for the Health page; `start()` runs it every `everyMs` until `stop()`.
 *
 * @example
 * const pruner = createPruner({ database, alertsDays: 30, incidentsDays: 365, everyMs: 300_000, batchSize: 200, log });
 * pruner.start(); // ... await pruner.stop();
 */
export function createPruner(options: PrunerOptions) {
  const { database, alertsDays, incidentsDays, everyMs, batchSize, log } = options;
  for (const [name, value] of Object.entries({ alertsDays, incidentsDays })) {
    if (!(value >= 0)) throw new RangeError(`'${name}' must be 0 or more, got ${value}`);
  }
  if (incidentsDays !== 0 && (alertsDays === 0 || incidentsDays < alertsDays)) {
    throw new RangeError(
      `'incidentsDays' must be 0 or at least 'alertsDays' (${alertsDays}), got ${incidentsDays}`,
    );
  }
  if (!(everyMs >= 1)) throw new RangeError(`'everyMs' must be 1 or more, got ${everyMs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`'batchSize' must be a positive integer, got ${batchSize}`);
  }
  const now = options.now ?? (() => Date.now());
  const lifetime = new AbortController();
  let current: Promise<PruneRun> | undefined;
  let last: PruneRun | null = null;
  let loop: Promise<void> | undefined;
  let analyzedAt = Number.NEGATIVE_INFINITY;
  // PGlite: rows this pruner deleted from each table since it last vacuumed it. In memory, so a
  // restart counts from zero; what was deleted before is still seen in the statistics' dead rows,
  // which the first run's ANALYZE estimates again (PGlite forgets its statistics when it stops).
  const deletedSince = new Map<PrunedTable, number>(PRUNED_TABLES.map((t) => [t, 0]));
  const countDeleted = (table: PrunedTable, n: number) =>
    deletedSince.set(table, (deletedSince.get(table) ?? 0) + n);

  /**
   * PGlite has no autovacuum: vacuums the pruned tables whose dead rows (those this pruner deleted,
   * or those the statistics know of, whichever is more) passed autovacuum's threshold, one by one,
   * and analyzes the others at most hourly. Not a VACUUM of every table after every run that
   * deleted something: with months of alerts and incidents kept, that took 0.4 to 1.6 s every
   * five minutes for a few rows' sake, while PGlite's one connection kept alert POSTs waiting.
   */
  async function upkeep(vacuumed: PrunedTable[]): Promise<PruneRun["maintenance"]> {
    for (const t of await deadRows(database.sql)) {
      const dead = Math.max(deletedSince.get(t.table) ?? 0, t.dead);
      // Never vacuumed nor analyzed (-1): counts as empty, as autovacuum does.
      if (dead <= VACUUM_THRESHOLD + VACUUM_SCALE_FACTOR * Math.max(0, t.reltuples)) continue;
      await vacuum(database.sql, [t.table]);
      deletedSince.set(t.table, 0);
      vacuumed.push(t.table);
    }
    if (now() - analyzedAt >= ANALYZE_EVERY_MS) {
      await analyze(
        database.sql,
        PRUNED_TABLES.filter((t) => !vacuumed.includes(t)),
      );
      analyzedAt = now();
      if (vacuumed.length === 0) return "analyze";
    }
    return vacuumed.length > 0 ? "vacuum" : null;
  }

  /** Runs `step` until a batch comes back short of `batchSize` or `signal` aborts. */
  async function inBatches(step: () => Promise<number>, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = performance.now();
      if ((await step()) < batchSize) return;
      await pause(Math.max(MIN_PAUSE_MS, performance.now() - started), signal);
    }
  }

  async function prune(signal: AbortSignal): Promise<PruneRun> {
    const startedAt = now();
    const t0 = performance.now();
    const counts = { alerts: 0, alert_features: 0, incidents: 0, notifications: 0, conditions: 0 };
    let oldest: { alert_at: Date | null; incident_at: Date | null } = {
      alert_at: null,
      incident_at: null,
    };
    let error: string | null = null;
    let maintenance: PruneRun["maintenance"] = null;
    const vacuumed: PrunedTable[] = [];
    try {
      if (alertsDays > 0) {
        const before = new Date(startedAt - alertsDays * DAY_MS);
        await inBatches(async function alertBatch() {
          const b = await deleteAlertBatch(database.sql, before, batchSize);
          counts.alerts += b.alerts;
          counts.alert_features += b.alert_features;
          countDeleted("alert", b.alerts);
          countDeleted("alert_feature", b.alert_features);
          return b.alerts;
        }, signal);
      }
      if (incidentsDays > 0) {
        const before = new Date(startedAt - incidentsDays * DAY_MS);
        await inBatches(async function incidentBatch() {
          const b = await deleteIncidentBatch(database.sql, before, batchSize);
          counts.incidents += b.incidents;
          counts.alerts += b.alerts;
          counts.alert_features += b.alert_features;
          counts.notifications += b.notifications;
          countDeleted("incident", b.incidents);
          countDeleted("incident_sensor", b.incident_sensors);
          countDeleted("incident_event", b.incident_events);
          countDeleted("alert", b.alerts);
          countDeleted("alert_feature", b.alert_features);
          countDeleted("notification_outbox", b.notifications);
          return b.incidents;
        }, signal);
        await inBatches(async function conditionBatch() {
          const b = await deleteConditionBatch(
            database.sql,
            before,
            batchSize,
            new Date(startedAt),
          );
          counts.conditions += b.conditions;
          counts.notifications += b.notifications;
          countDeleted("feed_condition", b.conditions);
          countDeleted("notification_outbox", b.notifications);
          return b.conditions;
        }, signal);
      }
      if (database.kind === "pglite") maintenance = await upkeep(vacuumed);
      oldest = await oldestKept(database.sql);
    } catch (e) {
      error = (e as Error).message;
    }
    const run: PruneRun = {
      started_at: new Date(startedAt).toISOString(),
      finished_at: new Date(now()).toISOString(),
      duration_ms: Math.round(performance.now() - t0),
      ...counts,
      oldest_alert_at: oldest.alert_at?.toISOString() ?? null,
      oldest_incident_at: oldest.incident_at?.toISOString() ?? null,
      // A run that failed during its upkeep still names what it vacuumed before.
      maintenance: maintenance ?? (vacuumed.length > 0 ? "vacuum" : null),
      vacuumed,
      error,
    };
    try {
      await recordStatus(database.sql, {
        ...run,
        alerts_days: alertsDays,
        incidents_days: incidentsDays,
        every_s: everyMs / 1000,
        started_at: new Date(run.started_at),
        finished_at: new Date(run.finished_at),
        oldest_alert_at: oldest.alert_at,
        oldest_incident_at: oldest.incident_at,
      });
    } catch (e) {
      run.error ??= `the run was not recorded: ${(e as Error).message}`;
    }
    // Once per run, not per batch; a run that found nothing to delete only at debug.
    const deleted = run.alerts + run.incidents + run.notifications + run.conditions;
    if (run.error) log?.warn("retention prune failed", { ...run });
    else if (deleted > 0) log?.info("retention pruned", { ...run });
    else log?.debug("retention pruned", { ...run });
    return run;
  }

  async function run(): Promise<void> {
    while (!lifetime.signal.aborted) {
      await runOnce();
      await pause(everyMs, lifetime.signal);
    }
  }

  /** Prunes once now (joining a run already in progress); resolves with it, never rejects. */
  function runOnce(): Promise<PruneRun> {
    current ??= prune(lifetime.signal).then(function finished(r) {
      last = r;
      current = undefined;
      options.onRun?.(r);
      return r;
    });
    return current;
  }

  return {
    runOnce,
    /** Runs now and then every `everyMs` (once; a second call does nothing). */
    start(): void {
      loop ??= run();
    },
    /**
     * Stops the schedule and ends the current run after its statement in flight, waiting for it
     * until `deadline` aborts (then the statement is left to the database's close).
     */
    async stop(deadline?: AbortSignal): Promise<void> {
      lifetime.abort(new Error("pruner stopping"));
      const finished = Promise.all([loop, current]);
      if (!deadline) return void (await finished);
      let giveUp = () => {};
      const late = new Promise<void>((resolve) => {
        giveUp = resolve;
        if (deadline.aborted) resolve();
        else deadline.addEventListener("abort", giveUp, { once: true });
      });
      await Promise.race([finished, late]);
      deadline.removeEventListener("abort", giveUp);
    },
    /** Whether a run is in progress, and the last one finished (null before the first). */
    status(): { running: boolean; last: PruneRun | null } {
      return { running: current !== undefined, last };
    },
  };
}
