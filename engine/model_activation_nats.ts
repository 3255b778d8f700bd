// Model operations under scale-out (FRAME_BUS=nats): the shared registry's pointer moves, every worker follows it.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KV } from "@nats-io/kv";
import type { EngineConfig } from "../contracts/config.ts";
import { type ErrorCode, HttpError } from "../contracts/error.ts";
import type { ModelMetadata } from "../contracts/model.ts";
import type {
  ActivateRequest,
  ActivateResponse,
  RetrainAsked,
  RetrainReport,
  RetrainRequest,
  RetrainResponse,
  RetrainRun,
  RetrainSchedule,
  ServedModel,
} from "../contracts/models_api.ts";
import type { Logger } from "../telemetry/logger.ts";
import { delay } from "./_delay.ts";
import { FollowRefusals } from "./infer/follow_refusals.ts";
import { loadModel } from "./infer/load_model.ts";
import {
  type LoadedReport,
  loadedKey,
  loadedVersions,
  type NatsModelRegistry,
  NatsRegistryError,
  sameLayout,
} from "./infer/nats_registry.ts";
import { type Activation, RegistryError } from "./infer/registry.ts";
import type { ModelActivation } from "./model_activation.ts";
import { parseRetrainReport, reportNotFound } from "./retrain/retrain_report.ts";

/** The shared registry's refusals as the operations API answers them. */
const ANSWER: Record<RegistryError["code"] | NatsRegistryError["code"], [number, ErrorCode]> = {
  model_not_found: [404, "model_not_found"],
  invalid_model_name: [404, "model_not_found"],
  version_not_found: [404, "version_not_found"],
  invalid_version: [400, "invalid_version"],
  version_exists: [409, "invalid_request"],
  registry_entry_invalid: [422, "registry_entry_invalid"],
  model_incompatible: [409, "model_incompatible"],
  activation_conflict: [409, "activation_in_progress"],
};

function toHttp(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof RegistryError || error instanceof NatsRegistryError) {
    const [status, code] = ANSWER[error.code];
    return new HttpError(status, code, error.message);
  }
  // The registry's buckets did not answer: nothing was changed.
  return new HttpError(
    503,
    "bus_unavailable",
    `the registry did not answer: ${(error as Error).message}`,
    {
      "Retry-After": "1",
    },
  );
}

/**
 * Loads `meta`'s version once as a worker would (its graph read from the registry, then the
 * engine's loader: the graph parsed, its inputs and outputs checked against the metadata, one
 * warm-up run) and closes it. The pointer is what every worker starting later loads first, so a
 * version that does not load must never reach it. The CPU, one session and a batch of one: what is
 * checked is the graph against its metadata, not the device, at the least memory. Measured with
 * the 25,000-feature model: RSS peaks 60-75 MB above the replica's on the first activation, of
 * which about 50 MB stays (ONNX Runtime's library and allocator, loaded once per process), and
 * 15-30 MB on later ones, given back when the session closes.
 * Throws a 422 `model_load_failed` naming the version when it does not load.
 */
async function trialLoad(registry: NatsModelRegistry, meta: ModelMetadata, log: Logger) {
  const where = `${meta.name}@${meta.version}`;
  let graph: Uint8Array;
  try {
    graph = await registry.read(meta.name, meta.version, "onnx");
  } catch (error) {
    throw toHttp(error);
  }
  const dir = await mkdtemp(join(tmpdir(), "engine-trial-load-"));
  try {
    await writeFile(join(dir, `${meta.name}.onnx`), graph);
    const model = await loadModel({
      dir,
      name: meta.name,
      metadata: meta,
      device: "cpu",
      sessions: 1,
      maxBatch: 1,
      log,
    });
    await model.close();
  } catch (error) {
    // The copy's folder is gone once this returns: the message names the graph by its file.
    const problem = (error as Error).message.replaceAll(`${dir}/`, "");
    throw new HttpError(
      422,
      "model_load_failed",
      `${where} cannot be loaded, so the workers could not load it: ${problem}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Workers whose heartbeat (`w.<id>` in the lease bucket) has not expired. */
async function liveWorkers(leases: KV): Promise<string[]> {
  const ids: string[] = [];
  for await (const key of await leases.keys("w.*")) {
    const entry = await leases.get(key).catch(() => null);
    if (entry?.operation !== "PUT") continue;
    try {
      if ((entry.json<{ expires: number }>().expires ?? 0) > Date.now()) ids.push(key.slice(2));
    } catch {
      // not a heartbeat
    }
  }
  return ids;
}

export interface NatsModelActivationDeps {
  config: EngineConfig;
  log: Logger;
  registry: NatsModelRegistry;
  /** The lease bucket: which workers are alive. */
  leases: KV;
  /** Per model served (`DEFAULT_MODEL_NAME` first), the version this replica stamps frames with. */
  served(): readonly ModelMetadata[] | undefined;
  /** Switches this replica's model `meta.name` to `meta` (same features and window size). */
  use(meta: ModelMetadata): void;
  /** The `MODEL_ROUTES` globs that reach model `name` (`*` for the default model). */
  routes(name: string): string[];
  /** Streams of model `name` this replica has seen. */
  streams(name: string): number;
  /** Model `name`'s retraining across the workers (RETRAIN_EVERY_H, runs asked for), listed with it. */
  retrain?: (name: string) => Promise<RetrainSchedule>;
  /**
   * Asks the workers for a run of model `name` (`askSharedRetrain`) and resolves with it once a
   * worker took it; absent when the training history is off (`HISTORY_MAX_BYTES=0`).
   */
  retrainNow?: (name: string, asked: RetrainAsked) => Promise<RetrainRun>;
}

/**
 * The operations API of an ingest replica, per model it serves. An activation is checked
 * (published, intact, the active version's features and window size: under scale-out
 * `reset_windows` cannot apply), loaded once here as a worker would load it (`422
 * model_load_failed` when it does not, the pointer left alone), then recorded by moving the
 * model's shared pointer (revision-checked: of two at once one gets `409
 * activation_in_progress`); this replica stamps the version on that model's frames from then
 * on, the other replicas within a KV watch, and the workers score each window with the version
 * its newest frame names. The answer comes once every
 * live worker reports the version loaded, or after one lease period (`NATS_LEASE_MS`, logged): a
 * worker that had not loaded it by then loads it on the first frame that names it. The other
 * models go on as they were.
 */
export function createNatsModelActivation(deps: NatsModelActivationDeps): ModelActivation {
  const { config, log, registry } = deps;
  /** Models being activated: one activation per model at a time. */
  const inProgress = new Set<string>();
  /** Per model, the pointer versions its follower could not switch to (shown by `list`). */
  const followers = new Map<string, FollowRefusals>();

  const served = () => {
    const metas = deps.served();
    if (!metas) throw new HttpError(503, "model_not_ready", "the replica is not ready");
    return metas;
  };
  const current = (name: string) => served().find((m) => m.name === name);

  /** What worker `id` reports under `loaded.<id>`; undefined when nothing readable is there. */
  async function loadedReport(id: string): Promise<Partial<LoadedReport> | undefined> {
    const entry = await registry.kv.get(loadedKey(id)).catch(() => null);
    if (entry?.operation !== "PUT") return undefined;
    try {
      return entry.json<Partial<LoadedReport>>();
    } catch {
      return undefined;
    }
  }

  /** Why live workers do not serve `version` of `name` (the pointer's): it does not load there. */
  async function workersRefusing(name: string, version: string): Promise<string[]> {
    const why: string[] = [];
    for (const id of await liveWorkers(deps.leases)) {
      const model = (await loadedReport(id))?.models?.[name];
      if (model?.refused?.version === version) {
        why.push(`worker ${id} serves ${model.active}: ${model.refused.error}`);
      }
    }
    return why;
  }

  /**
   * The version live workers serve instead of `version` (the pointer's) when they refuse it;
   * undefined when none does.
   */
  async function servedInstead(name: string, version: string): Promise<string | undefined> {
    for (const id of await liveWorkers(deps.leases)) {
      const model = (await loadedReport(id))?.models?.[name];
      if (model?.refused?.version === version && model.active) return model.active;
    }
    return undefined;
  }

  async function list(): Promise<ServedModel[]> {
    return Promise.all(
      served().map(async function describe(meta): Promise<ServedModel> {
        let versions: string[];
        let retrain: RetrainSchedule | undefined;
        let pointer: Activation | undefined;
        try {
          // The activation shown is the pointer's own record (the one it reached), one read: the
          // history grows with every activation and is read only where all of it is asked for.
          [versions, retrain, pointer] = await Promise.all([
            registry.versions(meta.name),
            deps.retrain?.(meta.name),
            registry.pointer(meta.name),
          ]);
        } catch (error) {
          throw toHttp(error);
        }
        const following =
          pointer && pointer.version !== meta.version && !inProgress.has(meta.name)
            ? (followers.get(meta.name)?.state(pointer.version) ?? { following: "pending" })
            : undefined;
        // Followed here, but workers that cannot load it score with another version: said too.
        const refusing =
          pointer && !following
            ? await workersRefusing(meta.name, pointer.version).catch(() => [])
            : [];
        return {
          name: meta.name,
          layout: "registry",
          active_version: meta.version,
          versions,
          n_features: meta.n_features,
          window_size: meta.window_size,
          routes: deps.routes(meta.name),
          live_streams: deps.streams(meta.name),
          streams: deps.streams(meta.name),
          ...(pointer ? { activation: pointer } : {}),
          ...(pointer && following
            ? { registry_pointer: { version: pointer.version, ...following } }
            : {}),
          ...(pointer && refusing.length > 0
            ? {
                registry_pointer: {
                  version: pointer.version,
                  following: "refused" as const,
                  error: refusing.join("; "),
                },
              }
            : {}),
          ...(retrain ? { retrain } : {}),
        };
      }),
    );
  }

  /**
   * Resolves with the live workers and those that report `name@version` loaded, by `signal` at
   * the latest.
   */
  async function workersLoaded(name: string, version: string, signal: AbortSignal) {
    let live: string[] = [];
    let ready: string[] = [];
    do {
      live = await liveWorkers(deps.leases);
      ready = [];
      for (const id of live) {
        const report = await loadedReport(id);
        if (report && loadedVersions(report, name).includes(version)) ready.push(id);
      }
      if (ready.length === live.length) break;
    } while (await delay(50, signal));
    return { live, ready };
  }

  async function activate(name: string, request: ActivateRequest): Promise<ActivateResponse> {
    const meta = current(name);
    if (!meta) {
      throw new HttpError(
        404,
        "model_not_found",
        `the engine serves no model ${JSON.stringify(name)}`,
      );
    }
    if (inProgress.has(name)) {
      throw new HttpError(409, "activation_in_progress", `model ${name} is being activated`);
    }
    inProgress.add(name);
    try {
      if (request.version === meta.version) {
        // Already active (and the shared pointer names it): nothing to move or record.
        let pointer: Awaited<ReturnType<NatsModelRegistry["pointer"]>>;
        try {
          pointer = await registry.pointer(name);
        } catch (error) {
          throw toHttp(error);
        }
        if (pointer?.version === meta.version) {
          log.info("model version already active; nothing changed", {
            model: name,
            version: meta.version,
            by: request.by ?? "api",
          });
          return {
            status: "active",
            model: name,
            version: meta.version,
            from: meta.version,
            activation: pointer,
            windows_reset: false,
            streams: deps.streams(name),
            unchanged: true,
          };
        }
      }
      let next: ModelMetadata;
      try {
        next = await registry.metadata(name, request.version);
      } catch (error) {
        throw toHttp(error);
      }
      if (!sameLayout(next, meta)) {
        throw new HttpError(
          409,
          "model_incompatible",
          `${name}@${next.version} has ${next.n_features} features and windows of ${next.window_size}, ` +
            `the active ${meta.version} ${meta.n_features} and ${meta.window_size}; under FRAME_BUS=nats ` +
            "workers switch only between versions of the same features and window size (reset_windows " +
            "applies to a single engine): serve it on a new NATS_STREAM",
        );
      }
      // Before the pointer moves: a worker (re)starting loads what it names.
      await trialLoad(registry, next, log);
      let record: ActivateResponse["activation"];
      // What scores now: a pointer the workers refuse (or this replica did not follow) never
      // served, so it must not become the rollback target.
      let serving = meta.version;
      try {
        const pointed = await registry.pointer(name);
        if (pointed) serving = (await servedInstead(name, pointed.version)) ?? serving;
        record = await registry.activate(name, next.version, {
          by: request.by ?? "api",
          reason: request.reason ?? "",
          serving,
        });
      } catch (error) {
        throw toHttp(error);
      }
      deps.use(next);
      const workers = await workersLoaded(
        name,
        next.version,
        AbortSignal.timeout(config.NATS_LEASE_MS),
      );
      const fields = {
        model: name,
        version: next.version,
        from: meta.version,
        by: record.by,
        reason: record.reason,
        workers: workers.live.length,
        workers_loaded: workers.ready.length,
      };
      if (workers.ready.length < workers.live.length) {
        log.warn("model activated; some workers had not loaded it within a lease period", {
          ...fields,
          not_loaded: workers.live.filter((id) => !workers.ready.includes(id)),
        });
      } else {
        log.info("model activated", fields);
      }
      return {
        status: "active",
        model: name,
        version: next.version,
        // The recorded rollback target (the audit copies it), else the version that served.
        from: record.from ?? serving,
        activation: record,
        windows_reset: false,
        streams: deps.streams(name),
      };
    } finally {
      inProgress.delete(name);
    }
  }

  /** `POST /models/{name}/retrain`: a request the workers take (one of them, by the model's lease). */
  async function retrain(name: string, request: RetrainRequest): Promise<RetrainResponse> {
    if (!current(name)) {
      throw new HttpError(
        404,
        "model_not_found",
        `the engine serves no model ${JSON.stringify(name)}`,
      );
    }
    if (!deps.retrainNow) {
      throw new HttpError(
        409,
        "retrain_unavailable",
        "the training history is off (HISTORY_MAX_BYTES=0): there is nothing to retrain on",
      );
    }
    const asked = {
      by: request.by ?? "api",
      reason: request.reason ?? "",
      at: new Date().toISOString(),
    };
    try {
      return { status: "started", model: name, run: await deps.retrainNow(name, asked) };
    } catch (error) {
      throw toHttp(error);
    }
  }

  /** `GET /models/{name}/retrains/{version}`: the report the worker that retrained it stored beside it. */
  async function report(name: string, version: string): Promise<RetrainReport> {
    if (!current(name)) {
      throw new HttpError(
        404,
        "model_not_found",
        `the engine serves no model ${JSON.stringify(name)}`,
      );
    }
    const where = `${name}@${version}`;
    let raw: unknown;
    try {
      // Checks the name and the version as safe path segments first.
      raw = await registry.report(name, version);
    } catch (error) {
      if (error instanceof SyntaxError) {
        throw new HttpError(
          422,
          "report_invalid",
          `the retraining report of ${where} is not JSON: ${error.message}`,
        );
      }
      throw toHttp(error);
    }
    if (raw === undefined) {
      let versions: string[];
      try {
        versions = await registry.versions(name);
      } catch (error) {
        throw toHttp(error);
      }
      if (!versions.includes(version)) {
        throw new HttpError(404, "version_not_found", `model ${name} has no version ${version}`);
      }
      throw reportNotFound(where);
    }
    return parseRetrainReport(raw, where);
  }

  /**
   * Follows each model's shared pointer (a KV watch): a version activated through another
   * replica or by `npm run train -- --publish URL --activate` is stamped from then on. One with
   * other features or window size is not followed (logged once).
   */
  function follow(): () => void {
    const stop = new AbortController();
    for (const { name } of served()) followModel(name, stop.signal);
    return () => stop.abort();
  }

  function followModel(name: string, signal: AbortSignal): void {
    const refusals = new FollowRefusals();
    followers.set(name, refusals);
    /** The newest pointer record the watch delivered: a retry is for it only. */
    let latest: { version: string; by: string } | undefined;
    async function onPointer(record: { version: string; by: string }, retry = false) {
      latest = record;
      const meta = current(name);
      const key = record.version;
      if (!meta || record.version === meta.version || (!retry && refusals.skip(key))) return;
      try {
        const next = await registry.metadata(name, record.version);
        if (!sameLayout(next, meta)) {
          throw new HttpError(
            409,
            "model_incompatible",
            "it has other features or another window size than the served version",
          );
        }
        deps.use(next);
        refusals.succeeded(key);
        log.info("following the registry's active version", {
          model: name,
          version: next.version,
          from: meta.version,
          by: record.by,
        });
      } catch (error) {
        const retryMs = refusals.failed(key, error);
        log.error(
          retryMs === undefined
            ? "the registry's active version cannot be followed; still stamping the previous one"
            : "the registry's active version could not be followed yet; still stamping the previous one, trying again",
          error as Error,
          { model: name, version: record.version, serving: meta.version, retry_ms: retryMs },
        );
        // The watch tells each change once: a failure that may pass is tried again here, unless
        // the pointer has moved on meanwhile.
        if (retryMs !== undefined) {
          void delay(retryMs, signal).then(
            () => (latest === record && !signal.aborted ? onPointer(record, true) : undefined),
            () => undefined,
          );
        }
      }
    }
    void registry.follow(
      name,
      signal,
      (record) => onPointer(record),
      (error) => log.warn("registry pointer watch failed; watching again", error),
    );
  }

  return { list, activate, retrain, report, follow };
}
