// Switches the served model to another version of the registry while frames keep flowing: load, warm, swap between two batches.
import type { EngineConfig } from "../contracts/config.ts";
import { type ErrorCode, HttpError } from "../contracts/error.ts";
import type { ModelMetadata } from "../contracts/model.ts";
import type {
  ActivateRequest,
  ActivateResponse,
  RetrainReport,
  RetrainRequest,
  RetrainResponse,
  ServedModel,
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
  isSafeVersion,
  type ModelRegistry,
  RegistryError,
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

export interface ModelActivation {
  /** `GET /models`: the served model with its registry entry. */
  list(): Promise<ServedModel[]>;
  /**
   * `POST /models/{name}/activate`: records the activation in the registry, then loads and
   * warms the version beside the serving one and swaps it in between two batches. Resolves
   * once the new version is scoring; throws an {@link HttpError} (404, 400, 409, 422) and
   * leaves the serving model as it was otherwise.
   */
  activate(name: string, request: ActivateRequest): Promise<ActivateResponse>;
  /**
   * `POST /models/{name}/retrain`: starts a retraining of the model now (the run goes on in the
   * background; `list` shows how it ends). Throws an {@link HttpError}: 404 for a model not
   * served, 409 `retrain_running` while a run of any model is in progress, 409
   * `retrain_unavailable` when this engine cannot retrain it.
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

  const served = () => {
    const p = state.pipeline;
    if (!p) throw new HttpError(503, "model_not_ready", `engine is ${state.status}`);
    return p;
  };
  const laneOf = (name: string) =>
    served().lanes.findIndex((lane) => lane.model.metadata.name === name);

  async function list(): Promise<ServedModel[]> {
    return Promise.all(
      served().lanes.map(async function describe(lane): Promise<ServedModel> {
        const meta = lane.model.metadata;
        const entry = await registry.model(meta.name).catch(() => undefined);
        const history = entry?.layout === "registry" ? await registry.activations(meta.name) : [];
        const last = history.at(-1);
        const pointer =
          entry?.layout === "registry"
            ? await registry.activeVersion(meta.name).catch(() => undefined)
            : undefined;
        return {
          name: meta.name,
          layout: entry?.layout ?? "flat",
          active_version: meta.version,
          versions: entry?.versions ?? [meta.version],
          n_features: meta.n_features,
          window_size: meta.window_size,
          routes: lane.routes,
          live_streams: lane.windows.streams,
          ...(last ? { activation: last } : {}),
          ...(pointer && pointer !== meta.version && !inProgress.has(meta.name)
            ? {
                registry_pointer: {
                  version: pointer,
                  ...refusals.state(`${meta.name}@${pointer}`),
                },
              }
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
    const entry = await registry.model(name).catch(() => undefined);
    if (entry?.layout !== "registry") {
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
          ? await registry.activate(name, meta.version, { by, reason })
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
      from: current.version,
      activation: record,
      windows_reset: !compatible,
      streams,
    };
  }

  return { list, activate, retrain, report, follow };
}
