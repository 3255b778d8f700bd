// One model's retraining under scale-out, scheduled or asked for: the lease holder retrains the shared registry's active version and publishes the candidate there.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { KV } from "@nats-io/kv";
import type { EngineConfig } from "../../contracts/config.ts";
import type { RetrainAsked, RetrainRun } from "../../contracts/models_api.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { NatsModelRegistry } from "../infer/nats_registry.ts";
import { type Activation, ModelRegistry } from "../infer/registry.ts";
import { type RetrainResult, runRetrainChild } from "./retrain_child.ts";
import { RetrainLease, type RetrainLeases } from "./retrain_lease.ts";
import { recordedModels, settleUnseenRun, writeRetrainRecord } from "./retrain_record.ts";
import { takeRetrainRequest } from "./retrain_request.ts";
import type { RetrainSkipped } from "./retrain_scheduler.ts";

export interface SharedRetrainOptions {
  config: Pick<EngineConfig, "RETRAIN_EVERY_H" | "RETRAIN_PROMOTE">;
  /** The retraining CLI's settings (`retrainEnvOf`); its `MODEL_DIR` is replaced by the scratch registry. */
  env: Record<string, string>;
  registry: NatsModelRegistry;
  /** The lease bucket (opened on first use: a bucket NATS cannot open now fails that run only). */
  leases: () => Promise<RetrainLeases>;
  /** This worker's id: the lease's holder, the run's `worker`. */
  worker: string;
  log: Logger;
  /** The run itself (default: the retraining CLI in a child process). */
  runChild?: typeof runRetrainChild;
  now?: () => number;
}

const failed = (error: string): RetrainResult => ({ outcome: "failed", reasons: [], error });

/**
 * A run's scratch folder in the temporary folder: `retrain-<model>-pid<pid>-XXXXXX`, naming the
 * process that made it, so a later sweep knows whose it is.
 */
const SCRATCH = /^retrain-(.+)-pid(\d+)-[A-Za-z0-9]{6}$/;
/** This process's scratch folders in use (paths): never swept. */
const inUse = new Set<string>();

/** Whether process `pid` exists (one of another user's counts: it may be using its folder). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Removes scratch folders whose process is gone (a worker killed mid-run; its retraining child
 * ends itself once its parent is gone), of `model` only when given. With `model`, called while
 * holding its lease before this process's run makes its own, this process's other folders of
 * it (left by an earlier life under the same pid, as in a container) go too. Folders of live
 * processes (other workers on this host) stay. Returns the paths removed.
 */
export async function sweepScratch(model?: string): Promise<string[]> {
  const dir = tmpdir();
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = SCRATCH.exec(name);
    if (!m || (model !== undefined && m[1] !== model)) continue;
    const path = join(dir, name);
    const pid = Number(m[2]);
    const ours = pid === process.pid;
    if (inUse.has(path) || (ours ? model === undefined : alive(pid))) continue;
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

/**
 * What a worker does once at its start, before its first run: this worker's runs the shared
 * record still shows `running` were cut short by its previous life (killed, restarted), so they
 * are recorded as failed, their end not seen; and scratch folders of processes that are gone are
 * removed. Failures are logged: runs go on.
 */
async function settleAtStart(o: SharedRetrainOptions): Promise<void> {
  try {
    for (const model of await recordedModels(o.registry.kv)) {
      const { record, settled } = await settleUnseenRun(o.registry.kv, model, o.worker);
      if (settled) {
        o.log.warn("a retraining run of this worker was cut short; recorded as failed", {
          model,
          started_at: record?.last.started_at,
        });
      }
    }
  } catch (error) {
    o.log.warn("the retraining records could not be checked at start", error as Error);
  }
  await sweepScratch().catch((error: Error) =>
    o.log.warn("stale retraining scratch folders could not be removed", error),
  );
}

/**
 * When (epoch ms) `model`'s retraining record was last written, by the NATS server's clock: the
 * end of its last run. Every worker reads the same time there, whatever its own clock says,
 * where `finished_at` is the clock of the worker that ran it.
 */
async function recordWrittenAt(kv: KV, model: string): Promise<number | undefined> {
  const entry = await kv.get(`retrain.${model}`);
  return entry?.operation === "PUT" ? entry.created.getTime() : undefined;
}

/**
 * The `run` of a worker's {@link RetrainScheduler}. Every worker schedules every model; a run
 * goes ahead only on the worker that takes the model's lease (`RetrainLeases`), and only when no
 * run finished within the last `RETRAIN_EVERY_H` (the shared record, read once the lease is held,
 * so the previous holder's record is always there): of N workers, one retrains a model once per
 * interval. Otherwise the run is skipped, saying who holds the lease or when the last run was.
 * When the last run ended is the record's time in the KV bucket (the NATS server's clock, one for
 * every worker), not its `finished_at` (the clock of the worker that ran it): a worker whose
 * clock runs ahead does not stop the others' runs. A last run that seems to end in the future
 * (this worker's clock is behind) counts as due.
 * A run asked for (`asked`: a request an ingest replica wrote, `retrain_request.<name>`) goes
 * ahead on the lease holder that takes the request (`takeRetrainRequest`), whenever the last run
 * was; a worker that finds it taken already skips.
 *
 * A last run the record still shows `running` once the lease is held is nobody's (its worker was
 * killed or cut off before recording its end): it is recorded as failed first (`settleUnseenRun`),
 * as a worker does at its start for its own such runs.
 *
 * The holder renews the lease while the run lasts and:
 * 1. copies the shared registry's active version into a scratch registry on disk (its graph and
 *    metadata, active there), since the retraining CLI works on `MODEL_DIR`;
 * 2. runs the CLI against it (`RETRAIN_PROMOTE=manual` there, so nothing is activated locally)
 *    with this worker's `HISTORY_DIR`, whose every writer's folder it reads;
 * 3. publishes the candidate into the shared registry, activated when the engine's
 *    `RETRAIN_PROMOTE` is `auto`, the gate promoted it and the shared pointer still names the
 *    version it was judged against (every worker then loads it, every replica stamps it), ready
 *    for `POST /models/NAME/activate` otherwise (held, saying so, when the active version
 *    changed during the run); stores the gate's report beside it
 *    (`<name>/<version>/<name>.retrain.json`);
 * 4. records the run (`retrain.<name>` in the pointer bucket: `GET /models` on every replica
 *    shows it), then releases the lease.
 *
 * A lease lost mid-run (a renewal found the key gone or another worker's, or none reached the
 * bucket for a whole TTL) stops the child; before each write to the registry the lease is renewed
 * once more, so a holder that lost it publishes and records nothing. Whatever fails (NATS
 * unreachable, the child) ends the run as `failed` in the scheduler, which logs it; scoring goes on.
 */
export function sharedRetrainRun(
  o: SharedRetrainOptions,
): (
  model: string,
  signal: AbortSignal,
  asked?: RetrainAsked,
) => Promise<RetrainResult | RetrainSkipped> {
  const now = o.now ?? Date.now;
  const everyMs = o.config.RETRAIN_EVERY_H * 3_600_000;
  const settled = settleAtStart(o);

  return async function retrainShared(model, signal, asked) {
    await settled;
    const taken = await (await o.leases()).acquire(model, o.worker);
    if (!(taken instanceof RetrainLease)) {
      return { skipped: `worker ${taken.holder} holds the retraining lease of ${model}` };
    }
    taken.keep(o.log);
    try {
      // Held: a run the record still shows running is nobody's now (its worker stopped).
      const { record, settled } = await settleUnseenRun(o.registry.kv, model);
      if (settled) {
        o.log.warn("a retraining run whose worker stopped was recorded as failed", {
          model,
          worker: record?.last.worker,
          started_at: record?.last.started_at,
        });
      }
      // Asked for: run it if this worker takes the request (read again now the lease is held).
      const request = asked ? await takeRetrainRequest(o.registry.kv, model) : undefined;
      if (asked && !request) {
        return { skipped: `the request to retrain ${model} was taken by another worker` };
      }
      const last = record?.last;
      const endedAt = last?.finished_at
        ? ((await recordWrittenAt(o.registry.kv, model)) ?? Date.parse(last.finished_at))
        : undefined;
      const since = endedAt === undefined ? Number.POSITIVE_INFINITY : now() - endedAt;
      if (!request && since >= 0 && since < everyMs) {
        return {
          skipped: `${model} was retrained by ${last?.worker ?? "another worker"} at ${new Date(endedAt as number).toISOString()}, within RETRAIN_EVERY_H`,
        };
      }
      const started: RetrainRun = {
        started_at: new Date(now()).toISOString(),
        finished_at: null,
        outcome: "running",
        reasons: [],
        worker: o.worker,
        ...(request ? { requested: request } : {}),
      };
      await writeRetrainRecord(o.registry.kv, model, { ...record, last: started });
      // Renewed at once before each write to the registry: a holder that lost the lease while
      // its renewals were failing must not publish or record over the next holder's run.
      const held = () => taken.renew().catch(() => false);
      const result = await retrainAndPublish(
        o,
        model,
        AbortSignal.any([signal, taken.signal]),
        held,
        request
          ? `retraining asked for by ${request.by}, run on worker ${o.worker}`
          : `scheduled retraining on worker ${o.worker}`,
      ).catch((error: Error) => failed(error.message));
      if (taken.signal.aborted && !signal.aborted) {
        // The lease went during the run: the child was stopped, or what it published stays.
        const why = (taken.signal.reason as Error).message;
        if (result.outcome === "failed") result.error = `stopped: ${why}`;
        else result.reasons.push(why);
      }
      const done: RetrainRun = {
        ...started,
        ...result,
        finished_at: new Date(now()).toISOString(),
      };
      const promoted = done.decision === "promoted" ? done : record?.last_promoted;
      const recorded = (await held())
        ? await writeRetrainRecord(o.registry.kv, model, {
            last: done,
            ...(promoted ? { last_promoted: promoted } : {}),
          }).then(
            () => undefined,
            (error: Error) => error.message,
          )
        : "the retraining lease is no longer held";
      if (recorded) {
        o.log.warn("the retraining run could not be recorded in the registry", {
          model,
          error: recorded,
        });
      }
      return request ? { ...result, requested: request } : result;
    } finally {
      await taken.release();
    }
  };
}

/** Steps 1 to 3 of {@link sharedRetrainRun} in a scratch folder, removed afterwards. */
async function retrainAndPublish(
  o: SharedRetrainOptions,
  model: string,
  signal: AbortSignal,
  held: () => Promise<boolean>,
  /** What ran, for the activation's reason. */
  what: string,
): Promise<RetrainResult> {
  const { config, registry, log } = o;
  const active = await registry.pointer(model);
  if (!active) return failed(`${model} has no active version in the shared registry`);
  await sweepScratch(model).catch((error: Error) =>
    log.warn("stale retraining scratch folders could not be removed", error, { model }),
  );
  const scratch = await mkdtemp(join(tmpdir(), `retrain-${model}-pid${process.pid}-`));
  inUse.add(scratch);
  try {
    const local = new ModelRegistry(scratch);
    await local.write(
      await registry.read(model, active.version, "onnx"),
      await registry.metadata(model, active.version),
      { activate: true, by: active.by, reason: "the shared registry's active version" },
    );
    const run = o.runChild ?? runRetrainChild;
    const result = await run({
      model,
      env: { ...o.env, MODEL_DIR: scratch, RETRAIN_PROMOTE: "manual" },
      signal,
    });
    const version = result.candidate_version;
    if (result.outcome !== "decided" || !version) return result;
    if (signal.aborted || !(await held())) {
      const why = (signal.reason as Error | undefined)?.message ?? "the retraining lease is lost";
      return failed(`stopped before publishing: ${why}`);
    }
    const { meta } = await registry.publishFromDisk(await local.resolve(model, version), {
      activate: false,
      by: "retrain",
    });
    let activation: Activation | undefined;
    let heldWhy: string | undefined;
    if (config.RETRAIN_PROMOTE === "auto" && result.decision === "promoted") {
      // The gate compared the candidate with `active`: a version activated since (a person's
      // rollback through any replica) stands, and the candidate waits for a person.
      const now = await registry.pointer(model);
      if (now?.version !== active.version) {
        heldWhy = `the active version changed during the run: the gate compared the candidate with ${active.version}, the registry names ${now?.version ?? "none"} since${now ? ` (activated by ${now.by} at ${now.at}${now.reason ? `: ${now.reason}` : ""})` : ""}; published, not activated`;
      } else {
        try {
          activation = await registry.activate(model, meta.version, {
            by: "retrain",
            reason: `promotion gate passed (${what})`,
          });
        } catch (error) {
          result.reasons.push(`published, not activated: ${(error as Error).message}`);
        }
      }
      if (activation && activation.from !== active.version) {
        // Another activation landed between the check and this one: put it back.
        heldWhy = `the active version changed during the run: the gate compared the candidate with ${active.version}, the registry named ${activation.from ?? "none"} when it was activated; put back`;
        if (activation.from) {
          await registry
            .activate(model, activation.from, { by: "retrain", reason: heldWhy })
            .catch((error: Error) => log.warn("could not put the active version back", error));
        }
        activation = undefined;
      }
      if (heldWhy) {
        result.decision = "held";
        result.reasons.unshift(heldWhy);
      }
    }
    await storeReport(o, model, version, scratch, activation, heldWhy).catch((error) =>
      log.warn("the retraining report could not be stored beside the version", error as Error, {
        model,
        version,
      }),
    );
    return { ...result, activated: activation !== undefined };
  } finally {
    await rm(scratch, { recursive: true, force: true });
    inUse.delete(scratch);
  }
}

/** The CLI's report, saying what happened in the shared registry, beside the published version. */
async function storeReport(
  o: SharedRetrainOptions,
  model: string,
  version: string,
  scratch: string,
  activation: Activation | undefined,
  /** Why a candidate the gate promoted is held (the active version changed during the run). */
  held?: string,
): Promise<void> {
  const report = JSON.parse(
    await readFile(join(scratch, model, `${version}.retrain.json`), "utf8"),
  ) as Record<string, unknown>;
  await o.registry.putReport(model, version, {
    ...report,
    ...(held
      ? { decision: "held", reasons: [held, ...((report.reasons as string[] | undefined) ?? [])] }
      : {}),
    promote: o.config.RETRAIN_PROMOTE,
    activated: activation ?? null,
    worker: o.worker,
  });
}
