// The engine's HTTP app: frame intake, health, stats. Web standards only; runtimes serve it.
import { type SpanContext, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { HttpError } from "../contracts/error.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { EngineMetrics } from "../telemetry/metrics.ts";
import { reclaim } from "./_reclaim.ts";
import type { EnginePipeline, EngineState, ModelLane } from "./engine_state.ts";
import { ArrivalOrder, type Turn } from "./ingest/arrival_order.ts";
import type { IngestedFrame } from "./ingest/ingestor.ts";
import type { NodeBodyStream } from "./ingest/read_body.ts";
import type { ModelActivation } from "./model_activation.ts";
import { mountModelRoutes } from "./models_routes.ts";
import { createRoleApp } from "./roles/role_app.ts";
import {
  type Clock,
  intakeGate,
  RETRY_AFTER,
  refuseFrameFromTheFuture,
} from "./roles/role_shell.ts";
import type { EngineStats } from "./stats.ts";

export type { Clock } from "./roles/role_shell.ts";

export interface EngineAppOptions {
  state: EngineState;
  stats: EngineStats;
  log: Logger;
  /** `INGEST_TOKEN`: when set, `/data-enqueue` needs `Authorization: Bearer <token>`. */
  ingestToken?: string;
  clock?: Clock;
  /** FRAME_MAX_AHEAD_S: how far ahead of `clock` a frame may be dated (default 300). */
  frameMaxAheadS?: number;
  /**
   * `INCIDENT_STALE_MS`: a stream that sent nothing for longer (and for 10 of its own intervals)
   * is listed as `silent` in `/stats`; absent, none is.
   */
  silentAfterMs?: number;
  metrics?: Pick<EngineMetrics, "framesAccepted" | "framesRejected">;
  tracer?: Tracer;
  /** Extra middleware mounted first (the OpenTelemetry server span). */
  middleware?: MiddlewareHandler[];
  /** Resident memory for `/stats`; a runtime detail passed in. */
  rssBytes?: () => number;
  /** The model operations (`GET /models`, activation), once the engine has loaded its model. */
  models?: () => ModelActivation | undefined;
  /** `ADMIN_TOKEN`: when set, the model operations need `Authorization: Bearer <token>`. */
  adminToken?: string;
  /** Every route answers only requests addressed to a loopback name (`roles/role_shell.ts`). */
  loopbackOnly?: boolean;
  /**
   * Uploads read or decoded at once, every model's lane together; one more is refused `429
   * too_many_uploads` before its body is read. Each holds at most its body's cap
   * (`MAX_BODY_BYTES` compressed, `MAX_DECOMPRESSED_BYTES` plain), so this bounds the intake's
   * memory. Default: `QUEUE_MAX_SIZE` (the capacity of a lane's queue).
   */
  maxUploads?: number;
}

/**
 * Builds the engine app: `POST /data-enqueue` (SPEC §4.1), `GET /health/live`,
 * `GET /health/ready`, `GET /stats`, `POST /stats/reset`. The enqueue handler checks readiness,
 * auth, the outbox bound, queue space and the uploads in flight before reading the body, so a
 * refused frame costs nothing; it then reads and decodes the body, takes a slab in its model's
 * queue, applies the stream's ordering rules and commits. It never waits on inference.
 */
export function createEngineApp(options: EngineAppOptions): Hono {
  const { state, stats, log, ingestToken, metrics, maxUploads } = options;
  if (maxUploads !== undefined && !(Number.isSafeInteger(maxUploads) && maxUploads >= 1)) {
    throw new RangeError(`'maxUploads' must be an integer >= 1, got ${maxUploads}`);
  }
  const clock = options.clock ?? { now: () => Date.now() };
  const tracer = options.tracer ?? trace.getTracer("engine");
  /** Whether frames are being refused because the alert outbox is at its bound. */
  let refusingForOutbox = false;
  /**
   * Uploads being read or decoded, every lane together. They hold no queue slab (a frame takes
   * one once decoded), so a slow upload never makes the queue look full; this count bounds them.
   */
  let uploads = 0;
  /**
   * Frames are admitted in the order their bodies finished arriving: decodes run on a pool of
   * workers and end in any order, and a stream's frames admitted in that order would be refused
   * `409 frame_out_of_order` though they arrived in order.
   */
  const arrivals = new ArrivalOrder();
  /**
   * Streams gone quiet on every lane, longest silent first (a line dark without a stop): the 256
   * most recently silent, so a line that has just gone dark is listed however many old ones are.
   */
  const silentStreams = (p: EnginePipeline | undefined) => {
    const at = clock.now();
    const after = options.silentAfterMs as number;
    const lanes = p?.lanes ?? [];
    // And those only remembered: gone silent before a restart, or forgotten at MAX_STREAMS.
    const remembered =
      p?.seen?.silent(
        at,
        after,
        lanes.map((l) => l.windows),
      ) ?? [];
    return [...lanes.flatMap((l) => l.windows.silent(at, after)), ...remembered]
      .sort((a, b) => a.last_accepted_at.localeCompare(b.last_accepted_at))
      .slice(-256);
  };
  const uploadLimit = (p: EnginePipeline | undefined) =>
    maxUploads ?? p?.lanes[0].queue.capacity ?? 0;
  const app = createRoleApp({
    log,
    middleware: options.middleware,
    readiness: () => state.readiness(),
    stats() {
      const p = state.pipeline;
      const snapshot = stats.snapshot({
        queue: {
          depth: p?.lanes.reduce((n, l) => n + l.queue.used, 0) ?? 0,
          capacity: p?.lanes.reduce((n, l) => n + l.queue.capacity, 0) ?? 0,
        },
        alerts: {
          generated: p?.alerts.counts.generated ?? 0,
          delivered: p?.alerts.counts.delivered ?? 0,
          outbox: p?.alerts.backlog ?? 0,
          held: p?.lanes.reduce((n, l) => n + l.pipeline.heldAlerts, 0) ?? 0,
          ...heldReason(p),
        },
        rss_bytes: options.rssBytes?.() ?? 0,
        served: (p?.lanes ?? []).map((l) => ({
          name: l.model.metadata.name,
          queue: { depth: l.queue.used, capacity: l.queue.capacity },
        })),
      });
      const uploadsNow = { in_flight: uploads, limit: uploadLimit(p) };
      // Before the models are loaded the engine knows nothing of its streams: the lists are left
      // out (not empty), so a reader (the backend's feed watch) does not take every stopped
      // machine and silent line for back.
      if (!p) return { ...snapshot, uploads: uploadsNow };
      return {
        ...snapshot,
        uploads: uploadsNow,
        // Stopped machines (a model's running condition fails): not anomalies, listed apart.
        machine_off: p.lanes.flatMap((l) => l.machine.list()),
        ...(options.silentAfterMs === undefined ? {} : { silent: silentStreams(p) }),
      };
    },
    resetStats: () => stats.reset(),
    adminToken: options.adminToken,
    loopbackOnly: options.loopbackOnly,
    intake: {
      gate: intakeGate({
        lifecycle: state,
        token: ingestToken,
        what: "engine",
        onRefused(reason) {
          stats.rejected++;
          metrics?.framesRejected.add(1, { reason });
        },
      }),
      enqueue: enqueueFrame,
    },
  });
  mountModelRoutes(app, options.models ?? (() => undefined), options.adminToken);
  return app;

  async function enqueueFrame(c: Context): Promise<Response> {
    const receivedAt = performance.now();
    let bodyTaken = false;
    /** Its place in the arrival order, once its body is in; ended in the last `finally`. */
    let turn: Turn | undefined;
    // Ready (the intake gate checked), so the pipeline exists. Held until the request ends: an
    // activation with other features waits for that before it lets this intake and queue go.
    const p = state.enter();
    try {
      if (p.alerts.full !== refusingForOutbox) {
        // Logged when refusing starts and when it stops, not per refused frame.
        refusingForOutbox = p.alerts.full;
        const fields = { outbox: p.alerts.backlog, outbox_bytes: p.alerts.backlogBytes };
        if (refusingForOutbox) log.warn("alert outbox at its bound; refusing frames", fields);
        else log.info("alert outbox below its bound; taking frames again", fields);
      }
      if (p.alerts.full) {
        throw new HttpError(
          503,
          "outbox_full",
          `alert outbox holds ${p.alerts.backlog} undelivered alerts (${p.alerts.backlogBytes} bytes); the backend must catch up`,
          { "Retry-After": "5" },
        );
      }
      // A frame takes its slab in its model's queue once decoded (with several models, its
      // stream's model is known only then: a binary frame's header, a JSON frame's stream_id).
      // A full queue is refused here, before the body is read: one model's, or every model's.
      const lanes = p.lanes;
      let lane: ModelLane = lanes[0];
      let slot = -1;
      const queueFull = (l: ModelLane) =>
        new HttpError(
          429,
          "queue_full",
          lanes.length === 1
            ? `queue holds ${l.queue.capacity} frames`
            : `the queue of model ${JSON.stringify(l.model.metadata.name)} holds ${l.queue.capacity} frames`,
          RETRY_AFTER,
        );
      if (lanes.every((l) => l.queue.used >= l.queue.capacity)) throw queueFull(lane);
      const limit = uploadLimit(p);
      if (uploads >= limit) {
        throw new HttpError(
          429,
          "too_many_uploads",
          `${uploads} uploads are in flight, the most the engine reads at once (QUEUE_MAX_SIZE); send again shortly`,
          RETRY_AFTER,
        );
      }
      const span = tracer.startSpan("enqueue frame");
      let spanContext: SpanContext | undefined;
      try {
        // @hono/node-server passes Node's request as `env.incoming`; other runtimes do not.
        const incoming = (c.env as { incoming?: NodeBodyStream } | undefined)?.incoming;
        bodyTaken = true;
        uploads++;
        let frame: IngestedFrame;
        try {
          frame = await p.ingestor.ingest(
            c.req.raw,
            function laneSlab(model) {
              lane = lanes[model];
              // An upload that outlasted an activation's wait (BODY_TIMEOUT_MS): its queue is
              // neither the intake's nor the one being scored, so the frame is refused (sent
              // again, it goes to the new queue), never accepted and lost.
              const stale =
                lane.batcher.queue !== lane.queue &&
                state.pipeline?.lanes[model]?.queue !== lane.queue;
              if (stale) throw modelSwitching(lane.model.metadata.name);
              slot = lane.queue.reserve();
              if (slot < 0) throw queueFull(lane);
              return lane.queue.slab(slot);
            },
            incoming,
            function arrived() {
              turn = arrivals.take();
            },
          );
        } finally {
          uploads--;
        }
        // Every frame whose body arrived before this one's is admitted or refused first.
        await turn?.ready;
        span.setAttributes({
          "engine.stream.id": frame.streamId,
          "engine.frame.bytes": frame.bodyBytes,
        });
        // Its upload outlasted the shutdown's drain: nothing would score it any more.
        if (state.intakeClosed) throw closedIntake();
        const now = clock.now();
        refuseFrameFromTheFuture(frame.timestamp, now, options.frameMaxAheadS ?? 300);
        const admission = lane.windows.admit(frame.streamId, frame.timestamp, now, frame.checksum);
        const timestamp = new Date(admission.timestamp).toISOString();
        if (admission.status === "duplicate") {
          lane.queue.release(slot);
          slot = -1;
          stats.duplicate++;
          span.setAttribute("engine.frame.outcome", "duplicate");
          return c.json({ status: "duplicate", stream_id: frame.streamId, timestamp }, 202);
        }
        if (admission.status === "too_many_streams") {
          throw new HttpError(
            503,
            "too_many_streams",
            `the engine keeps ${admission.maxStreams} streams (MAX_STREAMS), each sent a frame within INCIDENT_STALE_MS; stream ${JSON.stringify(frame.streamId)} gets a place once one falls silent that long`,
            { "Retry-After": "60" },
          );
        }
        if (admission.status === "out_of_order") {
          throw new HttpError(
            409,
            "frame_out_of_order",
            `timestamp ${timestamp} is older than stream ${JSON.stringify(frame.streamId)}'s newest frame ${new Date(admission.newest).toISOString()}`,
          );
        }
        if (admission.status === "collision") {
          throw new HttpError(
            409,
            "frame_timestamp_collision",
            `stream ${JSON.stringify(frame.streamId)} already has a frame at ${timestamp} with other values: timestamps are kept to the millisecond, so frames less than 1 ms apart collide; date them at least 1 ms apart`,
          );
        }
        spanContext = span.spanContext();
        lane.queue.commit(slot, {
          streamId: frame.streamId,
          timestamp: admission.timestamp,
          receivedAt,
          span: spanContext,
        });
        stats.accepted++;
        stats.acceptedBy(lane.model.metadata.name);
        span.setAttribute("engine.frame.outcome", "accepted");
        metrics?.framesAccepted.add(1);
        return c.json(
          {
            status: "accepted",
            stream_id: frame.streamId,
            timestamp,
            queue_depth: lane.queue.depth,
          },
          202,
        );
      } catch (error) {
        if (!spanContext && slot >= 0) lane.queue.release(slot);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    } catch (thrown) {
      // The intake's decoders close with the shutdown, or with an activation once its wait for
      // uploads in flight ran out: an upload cut by that is a 503 to retry.
      const error =
        thrown instanceof HttpError
          ? thrown
          : state.intakeClosed
            ? closedIntake()
            : state.pipeline?.ingestor !== p.ingestor
              ? modelSwitching()
              : thrown;
      // Refused before its body was read (429, 503, 401): Node reads and drops the body to keep
      // the connection, and those chunks are garbage too.
      if (!bodyTaken) reclaim(Number(c.req.header("content-length")) || 0);
      stats.rejected++;
      const reason = error instanceof HttpError ? error.code : "internal_error";
      metrics?.framesRejected.add(1, { reason });
      if (!(error instanceof HttpError)) log.error("frame intake failed", error as Error);
      throw error;
    } finally {
      // Every path ends here, answered or refused (thrown, duplicate, out of order, closed):
      // a turn left open would hold every later frame.
      turn?.end();
      state.leave(p);
    }
  }
}

/** A frame read by an intake an activation replaced: `503 model_not_ready`, sent again it goes to the new one. */
const modelSwitching = (model?: string) =>
  new HttpError(
    503,
    "model_not_ready",
    `the engine switched ${model ? `model ${JSON.stringify(model)}` : "a model"} to another version while this frame was read; send it again`,
    RETRY_AFTER,
  );

const closedIntake = () =>
  new HttpError(503, "shutting_down", "the engine is shutting down", RETRY_AFTER);

/** `alerts.held_reason` of `/stats`: why a lane holds alerts (the first failing), while one does. */
function heldReason(p: EnginePipeline | undefined): { held_reason?: string } {
  for (const lane of p?.lanes ?? []) {
    const held = lane.pipeline.heldBecause;
    if (held) return { held_reason: `model ${lane.model.metadata.name}: ${held.reason}` };
  }
  return {};
}
