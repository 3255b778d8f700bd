// A stateless ingest replica: the /data-enqueue contract, then a JetStream publish; 202 only after the PubAck.
import { SpanStatusCode, trace } from "@opentelemetry/api";
import type { Context } from "hono";
import type { EngineConfig } from "../../contracts/config.ts";
import { HttpError } from "../../contracts/error.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import { StreamRoutes } from "../../contracts/model_routes.ts";
import { createEngineMetrics } from "../../telemetry/metrics.ts";
import { sampleResources } from "../../telemetry/resources.ts";
import { delay } from "../_delay.ts";
import { reclaim } from "../_reclaim.ts";
import { BusRepair } from "../bus/bus_repair.ts";
import { connectWithRetry } from "../bus/connect.ts";
import { encodeFrame } from "../bus/frame_message.ts";
import { type GatheredReport, MachineOffBoard, machineOffTtlMs } from "../bus/machine_off_board.ts";
import type { NatsBus } from "../bus/nats_bus.ts";
import { PartitionLag } from "../bus/partition_lag.ts";
import { frameMessageId, partitionOf } from "../bus/partition_of.ts";
import { mergeScoring, ScoringRollCall } from "../bus/scoring_roll_call.ts";
import { ModelLoadError } from "../infer/execution_provider.ts";
import { activeOrSeed, NatsModelRegistry } from "../infer/nats_registry.ts";
import { ArrivalOrder, type Turn } from "../ingest/arrival_order.ts";
import { ingestorFor, modelLayoutsFor } from "../ingest/from_config.ts";
import type { FrameTarget, Ingestor } from "../ingest/ingestor.ts";
import type { ModelLayouts } from "../ingest/model_layouts.ts";
import type { NodeBodyStream } from "../ingest/read_body.ts";
import type { ModelActivation } from "../model_activation.ts";
import { createNatsModelActivation } from "../model_activation_nats.ts";
import { mountModelRoutes } from "../models_routes.ts";
import { FrameQueue } from "../queue/frame_queue.ts";
import {
  askSharedRetrain,
  RetrainLeases,
  readRetrainRecord,
  sharedSchedule,
} from "../retrain/mod.ts";
import { EngineStats } from "../stats.ts";
import { StreamOrder } from "../window/stream_order.ts";
import { createRoleApp } from "./role_app.ts";
import {
  intakeGate,
  Lifecycle,
  RETRY_AFTER,
  type Role,
  type RoleOptions,
  readinessBody,
  refuseFrameFromTheFuture,
  servesLoopbackOnly,
} from "./role_shell.ts";

export type IngestRoleOptions = RoleOptions;

// Streams whose order a replica remembers (for 409, duplicates and implicit times).
const MAX_TRACKED_STREAMS = 4096;
// Accepted timestamps remembered per stream to answer a repeated frame (as the single process).
const RECENT_TIMESTAMPS = 64;
// The workers' posts before the board is opened (not started): nothing known of them yet.
const NO_BOARD: GatheredReport = { machine_off: [], unknown: true };

/**
 * The shared registry and the metadata of the active version of each served model (what frames
 * must fit), in lane order: `DEFAULT_MODEL_NAME`, then each model `MODEL_ROUTES` names. A model
 * the registry has no active version of is seeded from `MODEL_DIR`.
 */
async function readMetadata(
  config: EngineConfig,
  bus: NatsBus,
  names: readonly string[],
): Promise<{ registry: NatsModelRegistry; metas: ModelMetadata[] }> {
  let registry: NatsModelRegistry;
  try {
    registry = await NatsModelRegistry.open(bus.nc, config.NATS_STREAM);
  } catch (error) {
    throw new ModelLoadError(`cannot open the model registry: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const metas: ModelMetadata[] = [];
  for (const name of names) {
    try {
      const active = await activeOrSeed(registry, config, "ingest", name);
      metas.push(await registry.metadata(active.name, active.version));
    } catch (error) {
      throw new ModelLoadError(`cannot load model ${name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return { registry, metas };
}

/** What the replica validates frames against: each model's active version and their layouts. */
interface Served {
  /** Per lane (`ModelLayouts` order), the version stamped on its frames. */
  metas: ModelMetadata[];
  layouts: ModelLayouts;
}

/**
 * Creates an ingest replica. It validates a frame exactly like the single-process engine (the
 * same ingestor, limits and token), then publishes it to `<NATS_STREAM>.p.<partition>` with the
 * message id `stream@timestamp` and answers `202` once JetStream has stored it (`duplicate`
 * when the server recognised a retry), `503 bus_unavailable` when JetStream does not answer
 * within `NATS_PUBLISH_TIMEOUT_MS`, and `429 queue_full` when the partition's owner reports more
 * than `NATS_MAX_LAG` frames not yet consumed (or, with no live owner, that many wait in the
 * stream after its last commit), `429 too_many_uploads` when `QUEUE_MAX_SIZE`
 * uploads are in flight (as the single process, before the body is read). It
 * keeps no frame after answering. Each frame is validated against its stream's model
 * (`MODEL_ROUTES`, first match, else `DEFAULT_MODEL_NAME`; `422` naming the model when it does
 * not fit) and carries that model's name and the version of the shared registry it was validated
 * against (the version that scores its windows); the replica serves the operations API
 * (`GET /models`, `POST /models/{name}/activate`, engine/README.md).
 */
export function createIngestRole(options: IngestRoleOptions): Role & { stats: EngineStats } {
  const { config, log } = options;
  const clock = options.clock ?? { now: () => Date.now() };
  const stats = new EngineStats();
  // The intake counters only: queue, batch and outbox instruments are the workers'.
  const metrics = createEngineMetrics();
  const tracer = trace.getTracer("engine");
  /** Each stream's order (newest and recent timestamps), the least recently active first. */
  const orders = new Map<string, StreamOrder>();
  /**
   * Frames are admitted and published in the order their bodies finished arriving, as in the
   * single process: decodes end in any order, and a stream's frames taken in that order would be
   * refused `409 frame_out_of_order`, or published out of order, though they arrived in order.
   */
  const arrivals = new ArrivalOrder();
  const lifecycle = new Lifecycle();
  const routes = new StreamRoutes(config.MODEL_ROUTES, config.DEFAULT_MODEL_NAME);
  /** What exists once the replica is ready. */
  let parts: { served: Served; bus: NatsBus; ingestor: Ingestor; pool: FrameQueue } | undefined;
  let inFlight = 0;
  let counters = { bus_unavailable: 0, workers_behind: 0 };
  const stop = new AbortController();
  /** Each partition's backlog: its owner's reports, or counted from the stream when it has none. */
  let partitionLag: PartitionLag | undefined;
  let watching: Promise<void> | undefined;
  let models: ModelActivation | undefined;
  /** The workers' retraining leases, opened at the first run asked for. */
  let retrainLeases: Promise<RetrainLeases> | undefined;
  let stopFollowing: (() => void) | undefined;
  /** The workers' stopped machines, gathered for `/stats` (the console reads this replica's). */
  let machineOffBoard: MachineOffBoard | undefined;
  /** The workers' scoring figures, gathered for `/stats`. */
  let rollCall: ScoringRollCall | undefined;
  let followingWorkers: Promise<void> | undefined;
  /** Makes the stream and the lease bucket again when the server lost them. */
  let repair: BusRepair | undefined;
  /** While JetStream acknowledges no publish: since when, the last warning, frames refused. */
  let busDown: { since: number; warnedAt: number; refused: number } | undefined;

  // An outage is logged when it begins, once a minute while it lasts and when it ends, not once
  // per frame: every stream's every retry is refused while it lasts.
  function busRefused(error: Error, streamId: string, partition: number) {
    const at = clock.now();
    if (!busDown) {
      busDown = { since: at, warnedAt: at, refused: 1 };
      log.warn("JetStream did not acknowledge a frame; frames are refused until it does", error, {
        stream_id: streamId,
        partition,
      });
      return;
    }
    busDown.refused++;
    if (at - busDown.warnedAt < 60_000) return;
    busDown.warnedAt = at;
    log.warn("JetStream still acknowledges no frame", error, {
      frames_refused: busDown.refused,
      since: new Date(busDown.since).toISOString(),
    });
  }

  function busAcknowledged() {
    if (!busDown) return;
    log.info("JetStream acknowledges frames again", {
      frames_refused: busDown.refused,
      down_ms: clock.now() - busDown.since,
    });
    busDown = undefined;
  }

  function orderOf(streamId: string): StreamOrder {
    const order = orders.get(streamId) ?? new StreamOrder(RECENT_TIMESTAMPS);
    orders.delete(streamId);
    orders.set(streamId, order);
    if (orders.size > MAX_TRACKED_STREAMS) orders.delete(orders.keys().next().value as string);
    return order;
  }

  async function enqueue(c: Context): Promise<Response> {
    const receivedAt = performance.now();
    let bodyTaken = false;
    /** Its place in the arrival order, once its body is in; ended once its publish is sent. */
    let turn: Turn | undefined;
    // Ready (the intake gate checked), so the parts exist.
    const { pool, ingestor, bus, served } = parts as NonNullable<typeof parts>;
    try {
      const slot = pool.reserve();
      if (slot < 0) {
        throw new HttpError(
          429,
          "too_many_uploads",
          `${pool.capacity} uploads are in flight, the most the replica reads at once (QUEUE_MAX_SIZE); send again shortly`,
          RETRY_AFTER,
        );
      }
      inFlight++;
      // As the single process's: a child of the request's server span, carried to the worker in
      // the frame's headers so its batch links to it and its alert continues this trace.
      const span = tracer.startSpan("enqueue frame");
      try {
        const incoming = (c.env as { incoming?: NodeBodyStream } | undefined)?.incoming;
        bodyTaken = true;
        const slab = pool.slab(slot);
        let values = slab;
        // Several models: the slab holds the largest frame; the stream's model takes its part.
        const target: FrameTarget =
          served.layouts.size === 1
            ? slab
            : function modelSlab(lane) {
                values = slab.subarray(0, served.layouts.layouts[lane].size);
                return values;
              };
        const frame = await ingestor.ingest(c.req.raw, target, incoming, function arrived() {
          turn = arrivals.take();
        });
        // Every frame whose body arrived before this one's is admitted or refused first.
        await turn?.ready;
        span.setAttributes({
          "engine.stream.id": frame.streamId,
          "engine.frame.bytes": frame.bodyBytes,
        });
        const meta = served.metas[frame.model];
        const streamId = frame.streamId;
        const now = clock.now();
        refuseFrameFromTheFuture(frame.timestamp, now, config.FRAME_MAX_AHEAD_S);
        // Decided and recorded before any await, as the single process does: two frames of one
        // stream in flight at once are judged against each other, not against a stale newest.
        const order = orderOf(streamId);
        const admission = order.admit(frame.timestamp, now, frame.checksum);
        const timestamp = admission.timestamp;
        const iso = new Date(timestamp).toISOString();
        if (admission.status === "out_of_order") {
          throw new HttpError(
            409,
            "frame_out_of_order",
            `timestamp ${iso} is older than stream ${JSON.stringify(streamId)}'s newest frame ${new Date(admission.newest).toISOString()}`,
          );
        }
        // Another frame at a millisecond this replica admitted: refused, as the single process
        // does, never published under that millisecond's message id and dropped as a repeat.
        if (admission.status === "collision") {
          throw new HttpError(
            409,
            "frame_timestamp_collision",
            `stream ${JSON.stringify(streamId)} already has a frame at ${iso} with other values: timestamps are kept to the millisecond, so frames less than 1 ms apart collide; date them at least 1 ms apart`,
          );
        }
        // A repeat of a recent frame is published again under the same message id: JetStream
        // stores it once and says whether it had it (an earlier try may still be in flight, or
        // have failed, so the replica cannot answer it alone).
        let ack: { duplicate: boolean; seq: number };
        let payload: Uint8Array;
        try {
          const partition = partitionOf(streamId, config.NATS_PARTITIONS);
          refuseWhenBehind(partition);
          // A copy: the slab is reused as soon as this request is answered.
          const encoded = encodeFrame({
            streamId,
            timestamp,
            receivedAt: performance.timeOrigin + receivedAt,
            model: meta.version,
            modelName: meta.name,
            values,
            span: span.spanContext(),
          });
          payload = encoded.payload;
          // Sent on the connection when called: the turn ends once it is, so a stream's frames
          // reach JetStream in the order they were admitted, their acknowledgements awaited apart.
          const acked = bus.js.publish(bus.subject(partition), payload, {
            msgID: frameMessageId(streamId, timestamp),
            headers: encoded.headers,
            timeout: config.NATS_PUBLISH_TIMEOUT_MS,
          });
          turn?.end();
          try {
            ack = await acked;
          } catch (error) {
            counters.bus_unavailable++;
            busRefused(error as Error, streamId, partition);
            // No stream listens (the server lost it): made again, the client's retry gets in.
            repair?.noticed(error);
            throw new HttpError(
              503,
              "bus_unavailable",
              `the frame bus did not acknowledge the frame: ${(error as Error).message}`,
              RETRY_AFTER,
            );
          }
        } catch (error) {
          // Not kept: its retry is a new frame, not a duplicate.
          if (admission.status === "accepted") order.withdraw(timestamp);
          throw error;
        }
        reclaim(payload.byteLength);
        busAcknowledged();
        span.setAttribute("engine.frame.outcome", ack.duplicate ? "duplicate" : "accepted");
        if (ack.duplicate) {
          stats.duplicate++;
          return c.json({ status: "duplicate", stream_id: streamId, timestamp: iso }, 202);
        }
        stats.accepted++;
        metrics.framesAccepted.add(1);
        return c.json({ status: "accepted", stream_id: streamId, timestamp: iso }, 202);
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        // Refused, failed or published: a turn left open would hold every later frame.
        turn?.end();
        span.end();
        inFlight--;
        pool.release(slot);
      }
    } catch (error) {
      if (!bodyTaken) reclaim(Number(c.req.header("content-length")) || 0);
      stats.rejected++;
      metrics.framesRejected.add(1, {
        reason: error instanceof HttpError ? error.code : "internal_error",
      });
      if (!(error instanceof HttpError)) log.error("frame intake failed", error as Error);
      throw error;
    }
  }

  /**
   * `429 queue_full` past `NATS_MAX_LAG` frames waiting on the partition: behind its owner, or, with
   * no live worker to own it, waiting for one (counted from the stream, so a dead owner's last
   * report does not let the backlog grow until the stream is full).
   */
  function refuseWhenBehind(partition: number): void {
    const behind = partitionLag?.lagOf(partition) ?? 0;
    if (behind < config.NATS_MAX_LAG) return;
    counters.workers_behind++;
    throw new HttpError(
      429,
      "queue_full",
      partitionLag?.isUnowned(partition)
        ? `no live worker owns partition ${partition}: ${behind} frames wait unscored (bound ${config.NATS_MAX_LAG})`
        : `workers are ${behind} frames behind on partition ${partition} (bound ${config.NATS_MAX_LAG})`,
      RETRY_AFTER,
    );
  }

  function start(): Promise<void> {
    return lifecycle.starting(async () => {
      const bus = await connectWithRetry(config, log, `engine-ingest-${process.pid}`, stop.signal);
      const { registry, metas } = await readMetadata(config, bus, routes.models).catch(
        async (error) => {
          await bus.close();
          throw error;
        },
      );
      const layouts = modelLayoutsFor(config, metas);
      const ingestor = ingestorFor(config, layouts);
      // A slab holds the largest model's frame.
      const pool = new FrameQueue({ capacity: config.QUEUE_MAX_SIZE, frameSize: layouts.maxSize });
      const ready = { served: { metas, layouts }, ingestor, pool, bus };
      parts = ready;
      repair = new BusRepair({ create: () => bus.repair(), log });
      partitionLag = new PartitionLag({
        kv: bus.kv,
        jsm: bus.jsm,
        stream: config.NATS_STREAM,
        partitions: config.NATS_PARTITIONS,
        log,
        onError: (error) => repair?.noticed(error),
      });
      watching = partitionLag.follow(stop.signal);
      machineOffBoard = new MachineOffBoard({
        nc: bus.nc,
        prefix: config.NATS_STREAM,
        // As the workers make it, should this replica open the bucket first.
        ttlMs: machineOffTtlMs(config.NATS_LEASE_MS),
        log,
      });
      rollCall = new ScoringRollCall({ nc: bus.nc, prefix: config.NATS_STREAM, log });
      followingWorkers = rollCall.follow(bus.kv, stop.signal);
      models = createNatsModelActivation({
        config,
        log,
        registry,
        leases: bus.kv,
        served: () => parts?.served.metas,
        // Same features and window size (checked): the layouts and slabs stay as they are.
        use(next) {
          const { metas: now } = ready.served;
          ready.served = { layouts, metas: now.map((m) => (m.name === next.name ? next : m)) };
        },
        routes: (name) => routes.globsOf(name),
        // The workers retrain; the replica shows their shared record of each model's last runs.
        retrain:
          config.RETRAIN_EVERY_H > 0 || config.HISTORY_MAX_BYTES > 0
            ? async (name) => {
                // A run whose worker no longer holds the lease (killed mid-run) shows as failed.
                retrainLeases ??= RetrainLeases.open(bus.nc, config.NATS_STREAM).catch((e) => {
                  retrainLeases = undefined;
                  throw e;
                });
                const leases = await retrainLeases.catch(() => undefined);
                return sharedSchedule(
                  config.RETRAIN_EVERY_H,
                  await readRetrainRecord(registry.kv, name, leases?.kv),
                );
              }
            : undefined,
        // A run asked for here is taken by the worker holding the model's retraining lease.
        retrainNow:
          config.HISTORY_MAX_BYTES > 0
            ? async (name, asked) => {
                retrainLeases ??= RetrainLeases.open(bus.nc, config.NATS_STREAM).catch((e) => {
                  // Opened again by the next request.
                  retrainLeases = undefined;
                  throw e;
                });
                return askSharedRetrain({
                  kv: registry.kv,
                  leases: await retrainLeases,
                  model: name,
                  asked,
                });
              }
            : undefined,
        streams(name) {
          let n = 0;
          for (const streamId of orders.keys()) {
            if (layouts.name(layouts.route(streamId)) === name) n++;
          }
          return n;
        },
      });
      stopFollowing = models.follow(0);
      lifecycle.ready();
      const [meta] = metas;
      log.info("ingest replica ready", {
        model: meta.name,
        version: meta.version,
        n_features: meta.n_features,
        ...(metas.length > 1
          ? {
              models: metas.map((m) => ({
                model: m.name,
                version: m.version,
                n_features: m.n_features,
                routes: routes.globsOf(m.name),
              })),
            }
          : {}),
        stream: config.NATS_STREAM,
        partitions: config.NATS_PARTITIONS,
      });
    });
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    const deadline = lifecycle.stopping(timeoutMs);
    // Requests in flight get their PubAck (or their 503) before the connection closes.
    while (inFlight > 0 && !deadline.aborted) await delay(5, deadline).catch(() => {});
    stop.abort();
    repair?.close();
    stopFollowing?.();
    await Promise.all([watching, followingWorkers]);
    await Promise.allSettled([parts?.bus.close(), parts?.ingestor.close()]);
    log.info("ingest replica stopped", { in_flight: inFlight });
  }

  const app = createRoleApp({
    log,
    loopbackOnly: servesLoopbackOnly(config),
    readiness: () =>
      readinessBody(lifecycle, {
        meta: parts?.served.metas[0],
        queue: parts ? { depth: parts.pool.used, capacity: parts.pool.capacity } : undefined,
      }),
    middleware: options.middleware,
    intake: {
      gate: intakeGate({
        lifecycle,
        token: config.INGEST_TOKEN,
        what: "ingest replica",
        onRefused(reason) {
          stats.rejected++;
          metrics.framesRejected.add(1, { reason });
        },
      }),
      enqueue,
    },
    async stats() {
      const [board, workers] = await Promise.all([
        machineOffBoard?.gather() ?? NO_BOARD,
        rollCall?.gather() ?? [],
      ]);
      // This replica's intake; the scoring is the workers', combined (bus/README.md).
      const { scored, ...scoring } = mergeScoring(workers);
      const unowned = partitionLag?.unowned;
      const own = stats.snapshot({
        queue: { depth: inFlight, capacity: parts?.pool.capacity ?? 0 },
        alerts: scoring.alerts,
        rss_bytes: sampleResources().rss_bytes,
      });
      return {
        ...own,
        frames: { ...own.frames, scored },
        batches: scoring.batches,
        latency_ms: scoring.latency_ms,
        inference_ms: scoring.inference_ms,
        // Every live worker's stopped machines and silent streams, as a single process lists its
        // own; the last good lists while NATS does not answer; none before the first read (not
        // "none stopped": the backend's feed watch would take every stop for over).
        ...(board.unknown ? {} : { machine_off: board.machine_off }),
        ...(board.silent && !board.unknown ? { silent: board.silent } : {}),
        role: "ingest",
        bus: {
          ...counters,
          max_lag: partitionLag?.maxLag ?? 0,
          live_workers: rollCall?.liveWorkers ?? 0,
          // Partitions no live worker owns, and their frames after the last commit: none is
          // scored until a worker takes them (their lag above, and 429 past NATS_MAX_LAG).
          unowned_partitions: unowned?.partitions ?? [],
          unscored_unowned: unowned?.unscored ?? 0,
          // The stream or lease bucket found missing on the server, being made again.
          ...(repair ? { repair: repair.report() } : {}),
        },
        // Each worker's own figures, as it answered (a live worker that did not answer within
        // the wait: its last answer, `at` saying when).
        workers,
      };
    },
    adminToken: config.ADMIN_TOKEN,
    resetStats() {
      stats.reset();
      counters = { bus_unavailable: 0, workers_behind: 0 };
    },
  });
  mountModelRoutes(app, () => models, config.ADMIN_TOKEN);
  return { app, stats, start, shutdown };
}
