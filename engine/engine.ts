// Assembles the engine from its configuration: model, queue, windows, batcher, alerts, HTTP app.
import { join } from "node:path";
import { trace } from "@opentelemetry/api";
import type { Hono } from "hono";
import { LOG_LEVELS } from "../telemetry/logger.ts";
import { createEngineMetrics } from "../telemetry/metrics.ts";
import { hasGpu, sampleResources } from "../telemetry/resources.ts";
import { delay } from "./_delay.ts";
import type { AlertPipeline } from "./alert/alert_pipeline.ts";
import { alertDispatcherFor, alertPipelineFor } from "./alert/from_config.ts";
import { FileIncidentStateStore } from "./alert/incident_state_store.ts";
import { Outbox } from "./alert/outbox.ts";
import { createEngineApp } from "./app.ts";
import { Batcher } from "./batch/batcher.ts";
import { windowScorerFor } from "./batch/from_config.ts";
import type { ScoredBatch } from "./batch/window_scorer.ts";
import { EngineState } from "./engine_state.ts";
import { modelFor } from "./infer/from_config.ts";
import { ingestorFor } from "./ingest/from_config.ts";
import { createModelActivation, type ModelActivation } from "./model_activation.ts";
import { FrameQueue } from "./queue/frame_queue.ts";
import type { Role, RoleOptions } from "./roles/role_shell.ts";
import { ScoringSummary } from "./scoring_summary.ts";
import { EngineStats } from "./stats.ts";
import { StreamWindows } from "./window/stream_windows.ts";

export type EngineOptions = RoleOptions;

/** How often the engine looks at the registry's pointer (a version activated from outside). */
const REGISTRY_POLL_MS = 2000;

/**
 * The single-process engine. `shutdown` is graceful: readiness and new frames turn 503, accepted
 * frames are scored, pending alerts get until the deadline to be delivered (the rest stay in the
 * outbox).
 */
export interface Engine extends Role {
  app: Hono;
  state: EngineState;
  stats: EngineStats;
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
  const summary = new ScoringSummary(log, () => stats.accepted);
  let models: ModelActivation | undefined;
  let stopFollowing: (() => void) | undefined;
  const app = createEngineApp({
    state,
    stats,
    log,
    ingestToken: config.INGEST_TOKEN,
    clock,
    metrics,
    tracer,
    middleware: options.middleware,
    rssBytes: () => sampleResources().rss_bytes,
    models: () => models,
    adminToken: config.ADMIN_TOKEN,
  });

  function onBatch(batch: ScoredBatch, pipeline: AlertPipeline) {
    const latencies = new Float64Array(batch.size);
    for (let i = 0; i < batch.size; i++) {
      const latencyMs = batch.completedAt - batch.receivedAt[i];
      latencies[i] = latencyMs;
      stats.frameScored(latencyMs);
      metrics.frameLatency.record(latencyMs);
    }
    // Not awaited inside: state saves, fsyncs and deliveries run while the next batch is scored.
    const { alerts, anomalies } = pipeline.scored(batch);
    stats.batchScored(batch.size, batch.inferenceMs);
    summary.batch(latencies, batch.inferenceMs, alerts);
    metrics.batchSize.record(batch.size);
    metrics.inferenceDuration.record(batch.inferenceMs);
    if (anomalies.length) {
      log.info("anomalous windows", {
        anomalies,
        open_incidents: pipeline.openIncidents,
        resources: sampleResources(),
      });
    }
    // Built only when it is logged: at the default level a batch allocates no log line.
    if (log.level >= LOG_LEVELS.debug) {
      log.debug("batch scored", {
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
      const { model, registry } = await modelFor(config, log);
      const meta = model.metadata;
      const ingestor = ingestorFor(config, meta.feature_names);
      const queue = new FrameQueue({ capacity: config.QUEUE_MAX_SIZE, frameSize: meta.n_features });
      const windows = StreamWindows.forModel(meta);
      const outbox = await Outbox.open({ dir: config.DATA_DIR });
      const alerts = alertDispatcherFor(config, outbox, {
        log,
        metrics,
        fetch: options.fetch,
        tracer,
      });
      const pipeline = alertPipelineFor(config, meta, {
        dispatcher: alerts,
        log,
        now: () => clock.now(),
        store: () => new FileIncidentStateStore(join(config.DATA_DIR, "incidents")),
      });
      // The queue of the moment: an activation with other features replaces it.
      metrics.queueDepth.addCallback((r) => r.observe(state.pipeline?.queue.used ?? 0));
      metrics.outboxDepth.addCallback((r) => r.observe(outbox.size));
      const batcher = new Batcher({
        queue,
        windows,
        scorer: windowScorerFor(config, model),
        maxDelayMs: config.BATCH_MAX_DELAY_MS,
        tracer,
        onBatch(batch) {
          onBatch(batch, pipeline);
        },
        onError(error, size) {
          log.error("batch failed; its windows are not scored", error, {
            batch_size: size,
          });
        },
      });
      alerts.start();
      await pipeline.start();
      batcher.start();
      summary.start();
      state.ready({ model, queue, windows, ingestor, batcher, alerts, outbox, pipeline });
      models = createModelActivation({ config, log, state, registry });
      stopFollowing = models.follow(REGISTRY_POLL_MS);
      log.info("engine ready", {
        model: meta.name,
        version: meta.version,
        n_features: meta.n_features,
        window_size: meta.window_size,
        execution_provider: model.provider,
        gpu_available: state.readiness().gpu.available,
        outbox_kept: outbox.size,
        alert_mode: config.ALERT_MODE,
        open_incidents: pipeline.openIncidents,
      });
    });
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    stopFollowing?.();
    const deadline = state.stopping(timeoutMs);
    const p = state.pipeline;
    if (!p) return;
    // Accepted frames (committed, or still uploading into a reserved slab) are scored first.
    while ((p.batcher.queue.used > 0 || p.batcher.busy) && !deadline.aborted)
      await delay(5, deadline);
    await p.batcher.stop();
    summary.stop();
    await p.pipeline.stop();
    await p.alerts.drain(deadline);
    await Promise.allSettled([p.outbox.close(), p.ingestor.close(), p.model.close()]);
    log.info("engine stopped", { unscored_frames: p.queue.used, outbox_kept: p.outbox.size });
  }

  return { app, state, stats, start, shutdown };
}
