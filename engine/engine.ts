// Assembles the engine from its configuration: model, queue, windows, batcher, alerts, HTTP app.
import { trace } from "@opentelemetry/api";
import type { Hono } from "hono";
import { StreamRoutes } from "../contracts/model_routes.ts";
import { LOG_LEVELS } from "../telemetry/logger.ts";
import { createEngineMetrics } from "../telemetry/metrics.ts";
import { hasGpu, sampleResources } from "../telemetry/resources.ts";
import { delay } from "./_delay.ts";
import type { AlertPipeline } from "./alert/alert_pipeline.ts";
import { alertDispatcherFor, alertPipelineFor } from "./alert/from_config.ts";
import {
  FileIncidentStateStore,
  incidentStateDir,
  moveLegacyIncidentStates,
} from "./alert/incident_state_store.ts";
import { Outbox } from "./alert/outbox.ts";
import { resolveUnservedIncidents } from "./alert/resolve_unserved.ts";
import { createEngineApp } from "./app.ts";
import { Batcher, type MachineStop } from "./batch/batcher.ts";
import { windowScorerFor } from "./batch/from_config.ts";
import { type ScoredBatch, sliceBatch } from "./batch/window_scorer.ts";
import { type DecisionsClient, decisionsFor } from "./decisions/mod.ts";
import { EngineState, type ModelLane } from "./engine_state.ts";
import { evidenceFor, historyShare, onnxPathOf } from "./evidence/from_config.ts";
import { historyReport } from "./evidence/history_store.ts";
import { historyRecordersFor, type RecordedLane } from "./history/mod.ts";
import { FairTurns } from "./infer/fair_turns.ts";
import { modelsFor } from "./infer/from_config.ts";
import { seedRegistry } from "./infer/seed_registry.ts";
import { ingestorFor, modelLayoutsFor } from "./ingest/from_config.ts";
import { createModelActivation, type ModelActivation } from "./model_activation.ts";
import { FrameQueue } from "./queue/frame_queue.ts";
import { retrainSchedulerFor } from "./retrain/mod.ts";
import { type Role, type RoleOptions, servesLoopbackOnly } from "./roles/role_shell.ts";
import { ScoringSummary } from "./scoring_summary.ts";
import { EngineStats } from "./stats.ts";
import { MachineStates } from "./window/machine_states.ts";
import { SeenStreams } from "./window/seen_streams.ts";
import { StreamWindows, streamLimitsOf } from "./window/stream_windows.ts";

export type EngineOptions = RoleOptions;

/** How often the engine looks at the registry's pointer (a version activated from outside). */
const REGISTRY_POLL_MS = 2000;
/** How often the streams seen are saved: a kill -9 forgets at most this much of their activity. */
const SEEN_SAVE_MS = 5000;

/**
 * The single-process engine. `shutdown` is graceful: readiness and new frames turn 503, accepted
 * frames are scored, pending alerts get until the deadline to be delivered (the rest stay in the
 * outbox).
 */
export interface Engine extends Role {
  app: Hono;
  state: EngineState;
  stats: EngineStats;
  /** Operators' silences and verdicts from the backend; absent when `DECISIONS_POLL_S` is 0. */
  decisions?: DecisionsClient;
}

/**
 * Creates the engine. The app answers at once (`/health/ready` 503 while loading); `start()`
 * loads and warms the model, replays the outbox and starts scoring.
 *
 * @example
 * const engine = createEngine({ config: parseConfig(engineConfigSchema, env), log });
 * serve(engine.app.fetch); await engine.start();
 */
export function createEngine(options: EngineOptions): Engine {
  const { config, log } = options;
  const clock = options.clock ?? { now: () => Date.now() };
  const metrics = createEngineMetrics();
  const tracer = trace.getTracer("engine");
  const state = new EngineState(hasGpu());
  const stats = new EngineStats();
  stats.alertCounts = () => state.pipeline?.alerts.counts;
  const summary = new ScoringSummary(log, () => stats.acceptedSinceStart);
  let models: ModelActivation | undefined;
  let stopFollowing: (() => void) | undefined;
  let seenTimer: ReturnType<typeof setInterval> | undefined;
  let seenFailing = false;

  /** Writes the streams seen (see `SeenStreams`); a failure is logged once until a save works. */
  async function saveSeen(): Promise<void> {
    const p = state.pipeline;
    if (!p?.seen) return;
    try {
      await p.seen.save(p.lanes.map((l) => l.windows));
      seenFailing = false;
    } catch (error) {
      if (!seenFailing) {
        log.warn("the streams seen could not be saved; retried every few seconds", {
          file: p.seen.path,
          error: (error as Error).message,
        });
      }
      seenFailing = true;
    }
  }
  const decisions = decisionsFor(config, { log, fetch: options.fetch });
  if (decisions) {
    // `/stats` shows where the copy stands; readiness says when it is stale and stays ready.
    const report = () => decisions.report();
    stats.decisions = report;
    state.decisions = report;
  }
  // `/stats` shows the incident history budget of the lanes of the moment (an activation with
  // other features replaces a lane's store).
  stats.evidence = () => historyReport(state.pipeline?.lanes.map((l) => l.history) ?? []);
  // Each model's training history (HISTORY_DIR); undefined when HISTORY_MAX_BYTES is 0. Every
  // served model's recorder from the start: verdicts reach its index while nothing is scored.
  const training = historyRecordersFor(config, {
    log,
    decisions,
    served: () => state.pipeline?.lanes.map((l) => l.model.metadata) ?? [],
  });
  // Retraining: rounds (RETRAIN_EVERY_H) and runs asked for (history on); undefined when both off.
  const retraining = retrainSchedulerFor(config, {
    log,
    models: () => state.pipeline?.lanes.map((l) => l.model.metadata.name) ?? [],
  });
  const app = createEngineApp({
    state,
    stats,
    log,
    ingestToken: config.INGEST_TOKEN,
    clock,
    frameMaxAheadS: config.FRAME_MAX_AHEAD_S,
    silentAfterMs: config.INCIDENT_STALE_MS,
    metrics,
    tracer,
    middleware: options.middleware,
    rssBytes: () => sampleResources().rss_bytes,
    models: () => models,
    adminToken: config.ADMIN_TOKEN,
    loopbackOnly: servesLoopbackOnly(config),
  });

  function machineStopped(pipeline: AlertPipeline, model: string, streamId: string) {
    pipeline.machineStopped(streamId);
    training?.machineStopped(model, streamId);
  }

  function onBatch(
    batch: ScoredBatch,
    pipeline: AlertPipeline,
    model: string,
    stops: readonly MachineStop[],
    by: RecordedLane | undefined,
  ) {
    const latencies = new Float64Array(batch.size);
    for (let i = 0; i < batch.size; i++) {
      const latencyMs = batch.completedAt - batch.receivedAt[i];
      latencies[i] = latencyMs;
      stats.frameScored(latencyMs, model);
      metrics.frameLatency.record(latencyMs);
    }
    let alerts = 0;
    const anomalies: ReturnType<AlertPipeline["scored"]>["anomalies"] = [];
    let from = 0;
    /** Rows `from .. to` into the alert path and the training history. */
    const scoreRows = (to: number) => {
      if (to <= from) return;
      const rows = sliceBatch(batch, from, to);
      from = to;
      // Not awaited inside: state saves, fsyncs and deliveries run while the next batch is scored.
      const result = pipeline.scored(rows);
      alerts += result.alerts;
      anomalies.push(...result.anomalies);
      // The version that scored the rows and the frames it read: at a swap to other features the
      // lane is already the new version's while the old one scores what its queue still holds.
      // Incident membership is the alert path's own (one tracker, restored at start).
      training?.scored(rows, by, result.incidents);
    };
    // In frame order: a machine that stopped after some of the batch's windows resolves the
    // incident they belong to, and windows after it start afresh (as the worker does).
    for (const stop of stops) {
      scoreRows(stop.row);
      machineStopped(pipeline, model, stop.streamId);
    }
    scoreRows(batch.size);
    stats.batchScored(batch.size, batch.inferenceMs, model);
    summary.batch(latencies, batch.inferenceMs, alerts);
    metrics.batchSize.record(batch.size);
    metrics.inferenceDuration.record(batch.inferenceMs);
    // Each anomalous window is an alert in frame mode, said at info; in incident mode the
    // pipeline says each incident's events, and the windows are debug lines.
    if (anomalies.length) {
      const fields = () => ({
        anomalies,
        open_incidents: pipeline.openIncidents,
        resources: sampleResources(),
      });
      if (config.ALERT_MODE === "frame") log.info("anomalous windows", fields());
      else if (log.level >= LOG_LEVELS.debug) log.debug("anomalous windows", fields());
    }
    // Built only when it is logged: at the default level a batch allocates no log line.
    if (log.level >= LOG_LEVELS.debug) {
      log.debug("batch scored", {
        model,
        batch_size: batch.size,
        inference_ms: Math.round(batch.inferenceMs * 1000) / 1000,
        frames: Array.from({ length: batch.size }, (_, i) => ({
          stream_id: batch.streamIds[i],
          timestamp: new Date(batch.timestamps[i]).toISOString(),
          latency_ms: Math.round(latencies[i] * 1000) / 1000,
        })),
        alerts,
      });
    }
  }

  function start(): Promise<void> {
    return state.starting(async () => {
      // The copy on disk first, so decisions hold from the start even while the backend is down.
      await decisions?.start();
      if (config.MODEL_SEED_DIR) {
        for (const m of await seedRegistry(config.MODEL_SEED_DIR, config.MODEL_DIR)) {
          if (m.written) {
            log.info("model seeded into the registry", {
              model: m.name,
              version: m.version,
              active: m.active,
              model_dir: config.MODEL_DIR,
            });
          }
        }
      }
      const { models: loaded, refs, registry } = await modelsFor(config, log);
      const routes = new StreamRoutes(config.MODEL_ROUTES, config.DEFAULT_MODEL_NAME);
      // Several models take turns at inference, so a flood on one never starves another.
      const turns = loaded.length > 1 ? new FairTurns(loaded.length) : undefined;
      const layouts = modelLayoutsFor(
        config,
        loaded.map((m) => m.metadata),
      );
      const ingestor = ingestorFor(config, layouts);
      const outbox = await Outbox.open({ dir: config.DATA_DIR });
      const alerts = alertDispatcherFor(config, outbox, {
        log,
        metrics,
        fetch: options.fetch,
        tracer,
      });
      const rehomed = await moveLegacyIncidentStates(config.DATA_DIR, loaded[0].metadata.name);
      if (rehomed > 0) {
        log.info("incident states moved to their model's folder", {
          states: rehomed,
          data_dir: config.DATA_DIR,
        });
      }
      const lanes: ModelLane[] = loaded.map((model, index) => {
        const meta = model.metadata;
        const queue = new FrameQueue({
          capacity: config.QUEUE_MAX_SIZE,
          frameSize: meta.n_features,
        });
        const windows = StreamWindows.forModel(meta, streamLimitsOf(config));
        const machine = MachineStates.fromConfig(config, (streamId, doubt) =>
          log.warn(
            "a stopped machine reads as running: its running condition's sensor may have failed; nothing of it is scored",
            { model: meta.name, stream: streamId, ...doubt },
          ),
        );
        const { history, evidence } = evidenceFor(
          historyShare(config, loaded.length),
          meta,
          onnxPathOf(refs[index]),
        );
        const pipeline = alertPipelineFor(config, meta, {
          evidence,
          dispatcher: alerts,
          log,
          now: () => clock.now(),
          // Each model its own folder, whether it is the default or routed.
          store: () =>
            new FileIncidentStateStore(incidentStateDir(config.DATA_DIR, meta.name), {
              onUnusable: (file, problem) =>
                log.warn(
                  "an incident state file is unusable; moved aside, its stream starts afresh",
                  { file, problem },
                ),
            }),
        });
        const scorer = windowScorerFor(config, turns ? turns.wrap(model, index) : model);
        const batcher = new Batcher({
          queue,
          windows,
          scorer,
          maxDelayMs: config.BATCH_MAX_DELAY_MS,
          tracer,
          history,
          machine,
          onMachineStop(streamId) {
            machineStopped(pipeline, meta.name, streamId);
          },
          onBatch(batch, stops, by) {
            const { model, history } = by;
            onBatch(batch, pipeline, meta.name, stops, history ? { model, history } : undefined);
          },
          onError(error, size) {
            log.error("batch failed; its windows are not scored", error, {
              model: meta.name,
              batch_size: size,
            });
          },
        });
        return {
          model,
          queue,
          windows,
          batcher,
          pipeline,
          history,
          machine,
          routes: routes.globsOf(meta.name),
        };
      });
      // The queues of the moment: an activation with other features replaces one.
      metrics.queueDepth.addCallback((r) =>
        r.observe(state.pipeline?.lanes.reduce((n, l) => n + l.queue.used, 0) ?? 0),
      );
      metrics.outboxDepth.addCallback((r) => r.observe(outbox.size));
      alerts.start();
      for (const lane of lanes) await lane.pipeline.start();
      // Open incidents of a model no lane serves (renamed, no longer routed) would never end.
      await resolveUnservedIncidents({
        dataDir: config.DATA_DIR,
        served: lanes.map((l) => l.model.metadata.name),
        context: { threshold: config.ANOMALY_THRESHOLD, maxBytes: config.ALERT_MAX_BYTES },
        dispatcher: alerts,
        log,
        now: () => clock.now(),
      });
      for (const lane of lanes) lane.batcher.start();
      const seen = await SeenStreams.open(config.DATA_DIR, (file, problem) =>
        log.warn(
          "the file of streams seen is unusable; a stream gone silent before this start is not listed until it sends again",
          { file, problem },
        ),
      );
      seenTimer = setInterval(() => void saveSeen(), SEEN_SAVE_MS);
      seenTimer.unref();
      summary.start();
      state.ready({ ...lanes[0], lanes, ingestor, alerts, outbox, seen });
      models = createModelActivation({
        config,
        log,
        state,
        registry,
        turns,
        lanes: loaded.length,
        retraining,
      });
      stopFollowing = models.follow(REGISTRY_POLL_MS);
      retraining?.start();
      const meta = lanes[0].model.metadata;
      log.info("engine ready", {
        model: meta.name,
        version: meta.version,
        n_features: meta.n_features,
        window_size: meta.window_size,
        ...(lanes.length > 1
          ? {
              models: lanes.map((l) => ({
                model: l.model.metadata.name,
                version: l.model.metadata.version,
                n_features: l.model.metadata.n_features,
                routes: l.routes,
              })),
            }
          : {}),
        execution_provider: lanes[0].model.provider,
        gpu_available: state.readiness().gpu.available,
        outbox_kept: outbox.size,
        alert_mode: config.ALERT_MODE,
        open_incidents: lanes.reduce((n, l) => n + l.pipeline.openIncidents, 0),
      });
    });
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    stopFollowing?.();
    // Readiness and the intake turn 503 at once, before anything is awaited.
    const deadline = state.stopping(timeoutMs);
    // A run in progress is stopped (its candidate, if written, stays in the registry inactive).
    await retraining?.stop();
    await decisions?.stop();
    const p = state.pipeline;
    if (!p) return;
    // Accepted frames (committed, or still uploading into a reserved slab) are scored first.
    const pending = () => p.lanes.some((l) => l.batcher.queue.used > 0 || l.batcher.busy);
    while (pending() && !deadline.aborted) await delay(5, deadline);
    state.intakeClosed = true;
    for (const lane of p.lanes) await lane.batcher.stop();
    clearInterval(seenTimer);
    await saveSeen();
    await training?.close();
    summary.stop();
    for (const lane of p.lanes) await lane.pipeline.stop();
    await p.alerts.drain(deadline);
    await Promise.allSettled([
      p.outbox.close(),
      p.ingestor.close(),
      ...p.lanes.map((l) => l.model.close()),
    ]);
    log.info("engine stopped", {
      unscored_frames: p.lanes.reduce((n, l) => n + l.queue.used, 0),
      outbox_kept: p.outbox.size,
    });
  }

  return { app, state, stats, start, shutdown, decisions };
}
