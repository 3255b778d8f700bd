// Switches the served model to another version of the registry while frames keep flowing: load, warm, swap between two batches.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import type { EngineConfig } from "../contracts/config.ts";
import { type ErrorCode, HttpError } from "../contracts/error.ts";
import { type ModelMetadata, parseModelMetadata } from "../contracts/model.ts";
import {
  type ActivateRequest,
  type ActivateResponse,
  activationSchema,
  type RetrainReport,
  type RetrainRequest,
  type RetrainResponse,
  type ServedModel,
} from "../contracts/models_api.ts";
import { incidentTrackerFor } from "../scoring/incident_tracker.ts";
import { WindowShape } from "../scoring/window_features.ts";
import type { Logger } from "../telemetry/logger.ts";
import { alertModelFor } from "./alert/from_config.ts";
import { windowScorerFor } from "./batch/from_config.ts";
import type { EngineState, ModelLane } from "./engine_state.ts";
import { evidenceFor, historyShare, onnxPathOf } from "./evidence/from_config.ts";
import type { FairTurns } from "./infer/fair_turns.ts";
import { FollowRefusals } from "./infer/follow_refusals.ts";
import { loadVersion } from "./infer/from_config.ts";
import type { ScoringModel } from "./infer/load_model.ts";
import {
  type Activation,
  isSafeVersion,
  type ModelRegistry,
  RegistryError,
  type RegistryModel,
  type VersionRef,
  verifyVersion,
} from "./infer/registry.ts";
import { ingestorFor, modelLayoutsFor } from "./ingest/from_config.ts";
import { FrameQueue } from "./queue/frame_queue.ts";
import { readRetrainReport, reportNotFound } from "./retrain/retrain_report.ts";
import { RetrainBusy, type RetrainScheduler } from "./retrain/retrain_scheduler.ts";

/** The registry's errors as the operations API answers them: status and error code. */
const ANSWER: Record<RegistryError["code"], [number, ErrorCode]> = {
  model_not_found: [404, "model_not_found"],
  // A name that cannot be a model's is no model the engine serves.
  invalid_model_name: [404, "model_not_found"],
  version_not_found: [404, "version_not_found"],
  invalid_version: [400, "invalid_version"],
  version_exists: [409, "invalid_request"],
  registry_entry_invalid: [422, "registry_entry_invalid"],
};

function toHttp(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof RegistryError) {
    const [status, code] = ANSWER[error.code];
    return new HttpError(status, code, error.message);
  }
  return new HttpError(422, "model_load_failed", (error as Error).message);
}

const sameNames = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((name, i) => name === b[i]);

/** What a version's windows are made of: the streams carry over between two that agree. */
type WindowSpec = Pick<ModelMetadata, "feature_names" | "window_size">;
const sameSpec = (a: WindowSpec, b: WindowSpec) =>
  sameNames(a.feature_names, b.feature_names) && a.window_size === b.window_size;

/** The registry's entry of a model, or why it cannot be read (`GET /models` shows it). */
type RegistryRead =
  | { entry: RegistryModel; error?: undefined }
  | { entry?: undefined; error: { code: string; message: string }; layout: "registry" | "flat" };

export interface ModelActivation {
  /**
   * `GET /models`: the served model with its registry entry, the versions it cannot carry its
   * streams' windows over to (`incompatible_versions`), `registry_error` when the entry cannot be
   * read (a broken pointer: still the registry layout), the pointer's activation record, and
   * `registry_pointer` while the pointer names a version not scoring (not followed yet, or not
   * loadable: then its rollback target serves, after a start or a follow that failed).
   */
  list(): Promise<ServedModel[]>;
  /**
   * `POST /models/{name}/activate`: records the activation in the registry, then loads and
   * warms the version beside the serving one and swaps it in between two batches. Resolves
   * once the new version is scoring, at once with `unchanged: true` (nothing loaded or recorded)
   * when it is the version scoring and the registry's pointer names it; throws an
   * {@link HttpError} (404, 400, 409, 422) and leaves the serving model as it was otherwise.
   */
  activate(name: string, request: ActivateRequest): Promise<ActivateResponse>;
  /**
   * `POST /models/{name}/retrain`: starts a retraining of the model now (the run goes on in the
   * background; `list` shows how it ends). Throws an {@link HttpError}: 404 for a model not
   * served, 409 `retrain_running` while a run of any model is in progress, 409
   * `retrain_unavailable` when this engine cannot retrain it, the registry's error (422
   * `registry_entry_invalid`) when the model's registry entry cannot be read.
   */
  retrain(name: string, request: RetrainRequest): Promise<RetrainResponse>;
  /**
   * `GET /models/{name}/retrains/{version}`: the report the retraining of candidate `version`
   * wrote (both models' results, the data used, the decision and why). Throws an
   * {@link HttpError}: 404 `model_not_found` (not served), `version_not_found`,
   * `report_not_found` (a version trained, not retrained); 400 `invalid_version`; 422
   * `report_invalid` for a report that does not parse.
   */
  report(name: string, version: string): Promise<RetrainReport>;
  /**
   * Follows the registry's pointer: every `everyMs`, when the active version on disk is not the
   * one serving (`npm run train -- --activate`, a retraining's promotion, another process's
   * activation), switches to it as the API would, without a second record. A version with
   * other features is not followed (that needs `reset_windows` through the API): logged once.
   * Returns the function that stops following.
   */
  follow(everyMs: number): () => void;
}

/**
 * The model operations of the single-process engine. The swap is the batcher's: the batch in
 * progress finishes on the old version; a version with the same features and window size takes
 * every stream's window and running levels over (levels of another spec are rebuilt from the
 * readings the streams hold) and open incidents go on; otherwise (`reset_windows`) the intake
 * switches to the new features at once, the frames already accepted are scored by the old
 * version, and then the streams start afresh.
 */
export function createModelActivation(deps: {
  config: EngineConfig;
  log: Logger;
  state: EngineState;
  registry: ModelRegistry;
  /** The engine's inference turns when it serves several models. */
  turns?: FairTurns;
  /** Models served (they share the history budget). */
  lanes?: number;
  /** The retraining (RETRAIN_EVERY_H, runs asked for): listed with each model, asked through `retrain`. */
  retraining?: Pick<RetrainScheduler, "status" | "ask">;
}): ModelActivation {
  const { config, log, state, registry, turns } = deps;
  /** Models being activated: one activation per model at a time. */
  const inProgress = new Set<string>();
  /** Pointer versions the follower could not switch to (`follow`), shown by `list`. */
  const refusals = new FollowRefusals();
  /** Each version's window spec by `name@version` (a version is immutable), for `list`. */
  const specs = new Map<string, WindowSpec>();

  async function readRegistry(name: string): Promise<RegistryRead> {
    try {
      return { entry: await registry.model(name) };
    } catch (error) {
      // Only a model in the registry layout has a pointer that can fail to be read.
      const pointerBroken = await registry.activeVersion(name).then(
        () => false,
        () => true,
      );
      return {
        error: {
          code: error instanceof RegistryError ? error.code : "registry_unreadable",
          message: (error as Error).message,
        },
        layout: pointerBroken ? "registry" : "flat",
      };
    }
  }

  /** The versions of `entry` whose windows the served `meta` cannot carry over (`reset_windows`). */
  async function incompatible(entry: RegistryModel, meta: ModelMetadata): Promise<string[]> {
    const out: string[] = [];
    for (const version of entry.versions) {
      if (version === meta.version) continue;
      const key = `${entry.name}@${version}`;
      // The metadata alone: the graph's checksum is checked when it is activated. One that
      // cannot be read now is not marked, and read again next time.
      const path = join(registry.dir, entry.name, version, `${entry.name}.json`);
      const spec =
        specs.get(key) ??
        (await readFile(path, "utf8").then(
          (text) => parseModelMetadata(JSON.parse(text)),
          () => undefined,
        ));
      if (!spec) continue;
      specs.set(key, spec);
      if (!sameSpec(spec, meta)) out.push(version);
    }
    return out;
  }

  const served = () => {
    const p = state.pipeline;
    if (!p) throw new HttpError(503, "model_not_ready", `engine is ${state.status}`);
    return p;
  };
  const laneOf = (name: string) =>
    served().lanes.findIndex((lane) => lane.model.metadata.name === name);

  /**
   * The activation that took effect: the record the pointer holds. The history's last line is
   * written before the pointer, so it may be an attempt that failed or was killed before the
   * pointer moved; only with the pointer unreadable is it all there is (kept apart, listed).
   */
  async function lastActivation(name: string): Promise<Activation | undefined> {
    let record: Activation | undefined;
    try {
      record = await registry.activeRecord(name);
    } catch {
      return (await registry.activations(name)).at(-1);
    }
    if (!record) return undefined;
    const { version } = record;
    if (v.is(activationSchema, record)) return record;
    // A pointer naming its version without the whole record: the last record that named it.
    return (await registry.activations(name)).findLast((a) => a.version === version);
  }

  /**
   * `registry_pointer`: the pointer's version and how following it stands. Serving its `from`
   * is what a start does when the pointer's version cannot be loaded (`modelFor`), as the
   * follower does when it cannot switch: the error says which version serves, and till when.
   */
  function pointerState(
    name: string,
    version: string,
    record: Activation | undefined,
    serving: string,
  ) {
    const state = refusals.state(`${name}@${version}`);
    if (state.following === "pending" || record?.from !== serving) return { version, ...state };
    const till = state.following === "refused" ? "until a version is activated" : "meanwhile";
    return {
      version,
      ...state,
      error: `${state.error ?? "it could not be loaded"}; its rollback target ${serving} (the pointer's from) serves ${till}`,
    };
  }

  async function list(): Promise<ServedModel[]> {
    return Promise.all(
      served().lanes.map(async function describe(lane): Promise<ServedModel> {
        const meta = lane.model.metadata;
        const read = await readRegistry(meta.name);
        const { entry } = read;
        const layout = entry ? entry.layout : read.layout;
        const last = layout === "registry" ? await lastActivation(meta.name) : undefined;
        const pointer = entry?.layout === "registry" ? entry.active : undefined;
        const others = entry?.layout === "registry" ? await incompatible(entry, meta) : [];
        return {
          name: meta.name,
          layout,
          active_version: meta.version,
          versions: entry?.versions ?? [meta.version],
          n_features: meta.n_features,
          window_size: meta.window_size,
          routes: lane.routes,
          live_streams: lane.windows.streams,
          streams: lane.windows.streams,
          ...(others.length ? { incompatible_versions: others } : {}),
          ...(read.error ? { registry_error: read.error } : {}),
          ...(last ? { activation: last } : {}),
          ...(pointer && pointer !== meta.version && !inProgress.has(meta.name)
            ? { registry_pointer: pointerState(meta.name, pointer, last, meta.version) }
            : {}),
          ...(deps.retraining ? { retrain: deps.retraining.status(meta.name) } : {}),
        };
      }),
    );
  }

  async function activate(name: string, request: ActivateRequest): Promise<ActivateResponse> {
    const index = laneOf(name);
    if (index < 0) {
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
      return await switchTo(index, request);
    } finally {
      inProgress.delete(name);
    }
  }

  async function retrain(name: string, request: RetrainRequest): Promise<RetrainResponse> {
    if (laneOf(name) < 0) {
      throw new HttpError(
        404,
        "model_not_found",
        `the engine serves no model ${JSON.stringify(name)}`,
      );
    }
    const { retraining } = deps;
    if (!retraining || config.HISTORY_MAX_BYTES === 0) {
      throw new HttpError(
        409,
        "retrain_unavailable",
        "the training history is off (HISTORY_MAX_BYTES=0): there is nothing to retrain on",
      );
    }
    const read = await readRegistry(name);
    if (read.error) {
      const [status, code] =
        read.error.code in ANSWER
          ? ANSWER[read.error.code as RegistryError["code"]]
          : ([422, "registry_entry_invalid"] as const);
      throw new HttpError(
        status,
        code,
        `${name} cannot be retrained while its registry entry cannot be read: ${read.error.message}`,
      );
    }
    if (read.entry.layout !== "registry") {
      throw new HttpError(
        409,
        "retrain_unavailable",
        `${name} is in the flat layout (MODEL_DIR/${name}.onnx): retraining writes a version ` +
          `beside the active one, which needs the registry layout (MODEL_DIR/${name}/<version>/)`,
      );
    }
    const asked = {
      by: request.by ?? "api",
      reason: request.reason ?? "",
      at: new Date().toISOString(),
    };
    try {
      return { status: "started", model: name, run: retraining.ask(name, asked) };
    } catch (error) {
      if (error instanceof RetrainBusy) throw new HttpError(409, "retrain_running", error.message);
      throw new HttpError(503, "shutting_down", (error as Error).message);
    }
  }

  async function report(name: string, version: string): Promise<RetrainReport> {
    if (laneOf(name) < 0) {
      throw new HttpError(
        404,
        "model_not_found",
        `the engine serves no model ${JSON.stringify(name)}`,
      );
    }
    // A pruned version's report stays beside the folder it had: read first (once the version is
    // known to be a safe path segment); only without one does the version decide the answer.
    if (isSafeVersion(version)) {
      try {
        return await readRetrainReport(registry.dir, name, version);
      } catch (error) {
        if (!(error instanceof HttpError && error.code === "report_not_found")) throw error;
      }
    }
    try {
      await registry.resolve(name, version);
    } catch (error) {
      throw toHttp(error);
    }
    throw reportNotFound(`${name}@${version}`);
  }

  function follow(everyMs: number): () => void {
    const timer = setInterval(async function followPointer() {
      const p = state.pipeline;
      if (!p || state.status !== "ready") return;
      for (const lane of p.lanes) {
        const current = lane.model.metadata;
        if (inProgress.has(current.name)) continue;
        // The pointer file only: a flat model has none (its one version is always active).
        const wanted = await registry.activeVersion(current.name).catch(() => undefined);
        const key = `${current.name}@${wanted}`;
        if (!wanted || wanted === current.version || refusals.skip(key)) continue;
        if (inProgress.has(current.name)) continue;
        inProgress.add(current.name);
        try {
          await switchTo(
            laneOf(current.name),
            { version: wanted, by: "registry", reason: "the registry's active version changed" },
            false,
          );
          refusals.succeeded(key);
        } catch (error) {
          const retryMs = refusals.failed(key, error);
          log.error(
            retryMs === undefined
              ? "the registry's active version cannot be followed; still serving the previous one"
              : "the registry's active version could not be followed yet; still serving the previous one, trying again",
            error as Error,
            { model: current.name, version: wanted, serving: current.version, retry_ms: retryMs },
          );
        } finally {
          inProgress.delete(current.name);
        }
      }
    }, everyMs);
    (timer as { unref?: () => void }).unref?.();
    return () => clearInterval(timer);
  }

  async function switchTo(
    index: number,
    request: ActivateRequest,
    recordIt = true,
  ): Promise<ActivateResponse> {
    const current = served().lanes[index].model.metadata;
    const { name } = current;
    const by = request.by ?? "api";
    const reason = request.reason ?? "";
    if (recordIt && request.version === current.version) {
      const same = await alreadyActive(index, by, reason);
      if (same) return same;
    }
    let ref: VersionRef;
    let meta: ModelMetadata;
    try {
      ref = await registry.resolve(name, request.version);
      meta = await verifyVersion(ref);
    } catch (error) {
      throw toHttp(error);
    }
    const compatible =
      sameNames(meta.feature_names, current.feature_names) &&
      meta.window_size === current.window_size;
    if (!compatible && !request.reset_windows) {
      throw new HttpError(
        409,
        "model_incompatible",
        `${name}@${meta.version} has ${meta.n_features} features and windows of ${meta.window_size}, ` +
          `the active ${current.version} ${current.n_features} and ${current.window_size}; ` +
          `send "reset_windows": true to start the streams' windows afresh`,
      );
    }
    let next: ScoringModel;
    try {
      next = await loadVersion(config, ref, log, meta);
    } catch (error) {
      throw toHttp(error);
    }
    // Recorded before the switch: a crash in between leaves the pointer on the new version,
    // which the next start loads, never a switch without a record.
    let record: ActivateResponse["activation"];
    try {
      record =
        ref.layout === "registry" && recordIt
          ? // The version serving: a pointer naming another (refused) is no rollback target.
            await registry.activate(name, meta.version, { by, reason, serving: current.version })
          : {
              name,
              version: meta.version,
              from: current.version,
              by,
              at: new Date().toISOString(),
              reason,
            };
    } catch (error) {
      await next.close();
      throw toHttp(error);
    }
    const p = served();
    const lane: ModelLane = p.lanes[index];
    const shape = WindowShape.forModel(meta);
    const scorer = windowScorerFor(config, turns ? turns.wrap(next, index) : next);
    const streams = lane.windows.streams;
    const newFeatures = !sameNames(meta.feature_names, current.feature_names);
    // Same features: the history goes on; other features: a fresh one from the switch.
    let context: ReturnType<typeof evidenceFor>;
    try {
      context = evidenceFor(
        historyShare(config, deps.lanes ?? 1),
        meta,
        onnxPathOf(ref),
        newFeatures ? undefined : lane.history,
      );
    } catch (error) {
      await next.close();
      throw toHttp(error);
    }
    const { history, evidence } = context;
    const previous = lane.model;
    const previousIngestor = p.ingestor;
    try {
      if (newFeatures) {
        // New frames are read with the new features into a new queue at once; the batcher
        // scores what the old queue holds with the old version before it switches.
        const queue = new FrameQueue({
          capacity: config.QUEUE_MAX_SIZE,
          frameSize: meta.n_features,
        });
        const metas = p.lanes.map((l, i) => (i === index ? meta : l.model.metadata));
        const ingestor = ingestorFor(config, modelLayoutsFor(config, metas));
        state.useLane(index, { ...lane, model: next, queue, history }, ingestor);
        // Uploads that took the old intake decode with it and, with several models, reserve
        // their slot in the old queue only once decoded: they end (committed, or refused) before
        // the old queue is let go and the intake closed. BODY_TIMEOUT_MS bounds the wait: an
        // upload still reading by then is answered 408, one still decoding `503 model_not_ready`.
        const uploads = state.inFlight(previousIngestor);
        if (uploads > 0) {
          const fields = { model: name, uploads, timeout_ms: config.BODY_TIMEOUT_MS };
          log.info("activation waits for uploads in flight on the previous intake", fields);
          const wait = AbortSignal.timeout(config.BODY_TIMEOUT_MS);
          if (!(await state.settled(previousIngestor, wait))) {
            log.warn("uploads still in flight on the previous intake; closing it", {
              ...fields,
              uploads: state.inFlight(previousIngestor),
            });
          }
        }
        await lane.batcher.swap({
          scorer,
          queue,
          history,
          apply() {
            lane.windows.adopt(shape, "reset");
            lane.pipeline.useModel({
              ...alertModelFor(config, meta),
              evidence,
              tracker:
                config.ALERT_MODE === "incident" ? incidentTrackerFor(config, meta) : undefined,
            });
          },
        });
        await previousIngestor.close();
      } else {
        await lane.batcher.swap({
          scorer,
          apply() {
            lane.windows.adopt(shape, compatible ? "carry" : "reset");
            lane.pipeline.useModel({ ...alertModelFor(config, meta), evidence });
            const now = state.pipeline?.lanes[index] ?? lane;
            state.useLane(index, { ...now, model: next });
          },
        });
      }
    } catch (error) {
      await next.close();
      throw new HttpError(
        503,
        "shutting_down",
        `the switch did not happen: ${(error as Error).message}`,
      );
    }
    await previous.close();
    log.info("model activated", {
      model: name,
      version: meta.version,
      from: current.version,
      by,
      reason,
      windows_reset: !compatible,
      streams,
    });
    return {
      status: "active",
      model: name,
      version: meta.version,
      // The recorded rollback target: the audit copies it, so it must be the record's.
      from: record.from ?? current.version,
      activation: record,
      windows_reset: !compatible,
      streams,
    };
  }

  /**
   * The answer to activating the version that scores now, when the registry names it too (or the
   * model is flat): nothing to load, nothing to record (`unchanged`). Undefined otherwise (the
   * pointer names another version the engine could not follow: activating moves it back).
   */
  async function alreadyActive(
    index: number,
    by: string,
    reason: string,
  ): Promise<ActivateResponse | undefined> {
    const lane = served().lanes[index];
    const { name, version } = lane.model.metadata;
    const { entry } = await readRegistry(name);
    if (!entry || (entry.layout === "registry" && entry.active !== version)) return undefined;
    // The pointer names this version: its record is the activation that made it active.
    const recorded = entry.layout === "registry" ? await lastActivation(name) : undefined;
    log.info("model version already active; nothing changed", { model: name, version, by });
    return {
      status: "active",
      model: name,
      version,
      from: version,
      // A flat model's one version has no record: the answer's is this request's, as a switch's.
      activation: recorded ?? {
        name,
        version,
        from: version,
        by,
        at: new Date().toISOString(),
        reason,
      },
      windows_reset: false,
      streams: lane.windows.streams,
      unchanged: true,
    };
  }

  return { list, activate, retrain, report, follow };
}
