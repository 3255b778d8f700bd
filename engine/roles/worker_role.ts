// An inference worker: owns partitions by lease, rebuilds windows, scores, outboxes alerts, then commits.
import { hostname } from "node:os";
import { join } from "node:path";
import type { JsMsg } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { Hono } from "hono";
import type { EngineConfig } from "../../contracts/config.ts";
import type { EngineReady } from "../../contracts/health.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { createEngineMetrics } from "../../telemetry/metrics.ts";
import { hasGpu, sampleResources } from "../../telemetry/resources.ts";
import { delay } from "../_delay.ts";
import { reclaim } from "../_reclaim.ts";
import type { AlertDispatcher } from "../alert/alert_dispatcher.ts";
import type { AlertPipeline } from "../alert/alert_pipeline.ts";
import { rankFlagged, severityScale } from "../alert/flagged_sensors.ts";
import { alertDispatcherFor, alertPipelineFor } from "../alert/from_config.ts";
import { Outbox } from "../alert/outbox.ts";
import { keepEvidence, type ScoredBatch } from "../batch/batcher.ts";
import { KvIncidentStateStore } from "../bus/kv_incident_state_store.ts";
import type { NatsBus } from "../bus/nats_bus.ts";
import { PartitionLeases, type PartitionRecord } from "../bus/partition_leases.ts";
import { readyModel } from "../engine_state.ts";
import { loadModel, type ScoringModel } from "../infer/load_model.ts";
import { EngineStats } from "../stats.ts";
import { StreamWindows } from "../window/stream_windows.ts";
import { connectWithRetry, FRAME_HEADERS, type Role } from "./ingest_role.ts";
import { createRoleApp } from "./role_app.ts";

export interface WorkerRoleOptions {
  config: EngineConfig;
  log: Logger;
  fetch?: typeof fetch;
  middleware?: Parameters<Hono["use"]>[1][];
}

/** A frame read back from the bus. */
interface BusFrame {
  seq: number;
  streamId: string;
  timestamp: number;
  /** Epoch ms the ingest replica received it. */
  receivedAt: number;
  values: Float32Array;
  /** Frames of the partition after this one not yet delivered to us. */
  pending: number;
}

/** Sequences of a stream's last `window_size - 1` accepted frames (its replay point). */
interface SeqRing {
  seqs: Float64Array;
  next: number;
  count: number;
}

interface Partition {
  id: number;
  /** Last sequence whose windows' alerts are in the outbox (replayed, never re-scored). */
  committed: number;
  /** Replay point stored with the last commit (where a re-read must start). */
  replay: number;
  /** Processed and durable in the outbox, not necessarily committed yet. */
  done: { seq: number; replay: number; lag: number } | undefined;
  lastCommitAt: number;
  /** Last sequence buffered (the reader resumes after it). */
  readSeq: number;
  frames: BusFrame[];
  windows: StreamWindows;
  rings: Map<string, SeqRing>;
  /** Alerts of this partition's streams: frame alerts, or incidents with state in the KV bucket. */
  pipeline: AlertPipeline;
  /** Set when handed over or lost: its frames are no longer taken. */
  closed: boolean;
  /** Being handed over: no new frames are taken, what is durable gets committed. */
  releasing: boolean;
  stopReader: () => void;
  resumeReader: (() => void) | undefined;
}

// Frames read ahead, all partitions together, at most this many bytes (and in the client's
// pull buffer as much again): a worker that owns every partition of a backlog stays bounded.
const READ_AHEAD_BYTES = 64 * 1024 * 1024;
const COMMIT_EVERY_MS = 100;

/**
 * Creates an inference worker. Partitions come and go through {@link PartitionLeases}; for each
 * one it holds, an ordered consumer reads `<stream>.p.<n>` from the partition's replay point
 * (frames up to the committed sequence only rebuild windows; later ones are scored). One loop
 * takes frames from every partition in turn into batches, scores them, makes the alerts durable
 * in the outbox (deterministic alert ids), checks the lease is still held and only then commits
 * each partition's sequence. Frames older than the stream's newest (two replicas raced) are
 * dropped and counted as late.
 */
export function createWorkerRole(options: WorkerRoleOptions): Role & { stats: EngineStats } {
  const { config, log } = options;
  const metrics = createEngineMetrics();
  const stats = new EngineStats();
  const safeHost =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, "-")
      .slice(0, 40) || "host";
  const workerId =
    config.NATS_WORKER_ID || `${safeHost}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const partitions = new Map<number, Partition>();
  const counters = { replayed: 0, late: 0, fenced_rows: 0, lost: 0, acquired: 0, released: 0 };
  const stop = new AbortController();
  let status: EngineReady["status"] = "loading";
  let failure: string | undefined;
  let model: ScoringModel | undefined;
  let bus: NatsBus | undefined;
  let leases: PartitionLeases | undefined;
  let incidentKv: KV | undefined;
  let outbox: Outbox | undefined;
  let alerts: AlertDispatcher | undefined;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let idle: (() => void)[] = [];
  let busy = false;
  let rotation = 0;

  const buffered = () => {
    let n = 0;
    for (const part of partitions.values()) {
      n += part.closed || part.releasing ? 0 : part.frames.length;
    }
    return n;
  };
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  /** Frames buffered per partition: the byte budget shared as if this worker owned them all. */
  function readAhead(): number {
    const frameBytes = (model?.metadata.n_features ?? 1) * 4;
    const frames = Math.floor(READ_AHEAD_BYTES / frameBytes / config.NATS_PARTITIONS);
    return Math.max(8, Math.min(512, frames));
  }

  function readiness(): EngineReady {
    const meta = model?.metadata;
    const body: EngineReady = {
      status,
      model: readyModel(meta),
      execution_provider: model?.provider ?? null,
      gpu: { available: hasGpu() || model?.provider === "cuda" },
      queue: { depth: buffered(), capacity: readAhead() * Math.max(1, partitions.size) },
    };
    if (failure) body.error = failure;
    return body;
  }

  function decode(m: JsMsg): BusFrame | undefined {
    const h = m.headers;
    const streamId = h?.get(FRAME_HEADERS.stream) ?? "";
    const timestamp = Number(h?.get(FRAME_HEADERS.timestamp));
    const receivedAt = Number(h?.get(FRAME_HEADERS.receivedAt));
    const n = model!.metadata.n_features;
    if (!streamId || !Number.isFinite(timestamp) || m.data.byteLength !== n * 4) {
      log.error("frame on the bus does not fit this model; skipped", {
        seq: m.seq,
        subject: m.subject,
        bytes: m.data.byteLength,
        expected_bytes: n * 4,
        model: h?.get(FRAME_HEADERS.model),
      });
      return undefined;
    }
    // A copy: aligned for Float32Array and independent of the client's read buffer.
    const values = new Float32Array(n);
    new Uint8Array(values.buffer).set(m.data);
    // The client's message buffer is garbage now, and this copy soon: large buffers behind
    // small objects, which V8 otherwise collects late (see engine/_reclaim.ts).
    reclaim(2 * m.data.byteLength);
    return { seq: m.seq, streamId, timestamp, receivedAt, values, pending: m.info.pending };
  }

  /** Reads partition `part` from `from` into its buffer until it is closed. */
  async function read(part: Partition, from: number): Promise<void> {
    let start = from;
    while (!part.closed && !stop.signal.aborted) {
      try {
        const consumer = await bus!.js.consumers.get(config.NATS_STREAM, {
          filter_subjects: bus!.subject(part.id),
          opt_start_seq: Math.max(1, start),
        });
        // Short pulls: a restarted server (ephemeral consumer gone) is noticed within seconds.
        const messages = await consumer.consume({ max_messages: readAhead(), expires: 2000 });
        part.stopReader = () => messages.stop();
        if (part.closed) messages.stop();
        for await (const m of messages) {
          if (part.closed) break;
          part.readSeq = m.seq;
          const frame = decode(m);
          if (frame) part.frames.push(frame);
          notify();
          if (part.frames.length >= readAhead()) {
            await new Promise<void>((resolve) => {
              part.resumeReader = resolve;
            });
          }
        }
        await consumer.delete().catch(() => {});
      } catch (error) {
        if (part.closed || stop.signal.aborted) break;
        log.warn("partition reader failed; reading again", error as Error, { partition: part.id });
        await delay(250, stop.signal);
      }
      start = part.readSeq + 1;
    }
  }

  function pipelineFor(id: number): AlertPipeline {
    return alertPipelineFor(config, model!.metadata, {
      dispatcher: alerts!,
      log,
      now: () => Date.now(),
      store: () => new KvIncidentStateStore(incidentKv!, id),
    });
  }

  async function open(id: number, record: PartitionRecord): Promise<void> {
    const meta = model!.metadata;
    // The partition's open incidents, as its previous owner saved them, before any frame.
    const pipeline = pipelineFor(id);
    await pipeline.start();
    const part: Partition = {
      pipeline,
      id,
      committed: record.committed,
      replay: record.replay,
      done: undefined,
      lastCommitAt: 0,
      readSeq: 0,
      frames: [],
      windows: StreamWindows.forModel(meta),
      rings: new Map(),
      closed: false,
      releasing: false,
      stopReader: () => {},
      resumeReader: undefined,
    };
    partitions.set(id, part);
    counters.acquired++;
    const from = record.replay > 0 ? record.replay : record.committed + 1;
    part.readSeq = from - 1;
    void read(part, from);
  }

  function close(id: number): void {
    const part = partitions.get(id);
    if (!part) return;
    part.closed = true;
    partitions.delete(id);
    part.stopReader();
    part.resumeReader?.();
    part.frames.length = 0;
    part.pipeline.stop().catch((error) => log.warn("alert pipeline stop failed", error as Error));
  }

  function whenIdle(): Promise<void> {
    if (!busy) return Promise.resolve();
    return new Promise((resolve) => idle.push(resolve));
  }

  /** The first sequence a new owner must read to rebuild every stream's window. */
  function replayPoint(part: Partition): number {
    let min = Number.POSITIVE_INFINITY;
    for (const ring of part.rings.values()) {
      if (ring.count === 0) continue;
      const oldest = ring.count < ring.seqs.length ? ring.seqs[0] : ring.seqs[ring.next];
      if (oldest < min) min = oldest;
    }
    return Number.isFinite(min) ? min : 0;
  }

  function remember(part: Partition, streamId: string, seq: number): void {
    // What a new owner re-reads to rebuild the stream's next window (running levels included).
    const keep = part.windows.rebuildFrames;
    if (keep === 0) return;
    let ring = part.rings.get(streamId);
    if (ring) {
      // Re-inserted on activity, like the window store's streams: the first key is the LRU.
      part.rings.delete(streamId);
    } else {
      // Streams the window store forgot (its LRU bound) no longer hold the replay point back.
      if (part.rings.size >= 1024) part.rings.delete(part.rings.keys().next().value as string);
      ring = { seqs: new Float64Array(keep), next: 0, count: 0 };
    }
    part.rings.set(streamId, ring);
    ring.seqs[ring.next] = seq;
    ring.next = (ring.next + 1) % keep;
    ring.count = Math.min(keep, ring.count + 1);
  }

  /**
   * Commits what is durable in the outbox: at once when `force` (idle, hand-over), else at most
   * every COMMIT_EVERY_MS per partition, so a busy partition costs one KV write per interval,
   * not one per batch. A later commit only means more frames re-read after a takeover.
   */
  async function commit(part: Partition, force: boolean): Promise<void> {
    const done = part.done;
    if (!done || done.seq <= part.committed || part.closed) return;
    if (!force && performance.now() - part.lastCommitAt < COMMIT_EVERY_MS) return;
    part.lastCommitAt = performance.now();
    if (await leases!.commit(part.id, done.seq, done.replay, done.lag)) {
      part.committed = Math.max(part.committed, done.seq);
      part.replay = done.replay;
    }
  }

  async function runLoop(m: ScoringModel): Promise<void> {
    const meta = m.metadata;
    const F = meta.n_features;
    const W = meta.window_size;
    const windowValues = W * F;
    const maxBatch = config.INFERENCE_BATCH_SIZE;
    const runSize = Math.max(1, Math.min(maxBatch, m.windowsPerRun));
    // The windows' shape (running levels included), as every partition's windows have it.
    const windowsShape = StreamWindows.forModel(meta);
    const scale = severityScale(meta);
    const input = new Float32Array(runSize * windowValues);
    const scratch = new Float32Array(windowValues);
    const output = new Float32Array(maxBatch * F);
    const severity = m.outputs.severity ? new Float32Array(maxBatch * F) : undefined;
    const statistic = m.outputs.statistic ? new Int32Array(maxBatch * F) : undefined;
    let flagged = new Int32Array(1024);
    let evidence = new Float32Array(1024);
    let evidenceLevels = new Float32Array(1024);
    const nb = windowsShape.baselineSize;
    const raw = new Float32Array(runSize * W * nb);
    const scratchRaw = new Float32Array(W * nb);
    const flaggedFrom = new Uint32Array(maxBatch + 1);
    const evidenceFrom = new Uint32Array(maxBatch + 1);
    const rowStream = new Array<string>(maxBatch).fill("");
    const rowTs = new Float64Array(maxBatch);
    const rowReceived = new Float64Array(maxBatch);
    const noSpans = new Array<undefined>(maxBatch).fill(undefined);
    /** Flags rows `from .. from + n` and keeps their flagged sensors' windows (as the batcher does). */
    const keepFlagged = (from: number, n: number) => {
      for (let k = 0; k < n; k++) {
        const r = from + k;
        const at = flaggedFrom[r];
        if (flagged.length < at + F) flagged = grow(flagged, at + F);
        const row = {
          scores: output.subarray(r * F, (r + 1) * F),
          severity: severity?.subarray(r * F, (r + 1) * F),
        };
        const count = rankFlagged(
          row,
          F,
          config.ANOMALY_THRESHOLD,
          scale,
          flagged,
          at,
          config.MAX_ALERT_FEATURES,
        );
        flaggedFrom[r + 1] = at + count;
        const listed = Math.min(count, config.MAX_ALERT_FEATURES);
        const ev = evidenceFrom[r];
        evidenceFrom[r + 1] = ev + listed;
        if (evidence.length < (ev + listed) * W) evidence = grow(evidence, (ev + listed) * W);
        if (evidenceLevels.length < ev + listed) {
          evidenceLevels = grow(evidenceLevels, ev + listed);
        }
        keepEvidence(
          windowsShape,
          input.subarray(k * windowValues),
          raw.subarray(k * W * nb),
          flagged.subarray(at, at + listed),
          evidence.subarray(ev * W),
          evidenceLevels.subarray(ev),
        );
      }
    };
    while (!stop.signal.aborted) {
      if (buffered() === 0) {
        // Idle: commit everything durable so a takeover re-reads as little as possible.
        busy = true;
        await Promise.all([...partitions.values()].map((part) => commit(part, true))).catch(
          (error) => log.warn("commit failed", error as Error),
        );
        busy = false;
        if (buffered() > 0) continue;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      busy = true;
      try {
        let rows = 0;
        let pending = 0;
        let inferenceMs = 0;
        flaggedFrom[0] = 0;
        evidenceFrom[0] = 0;
        const last = new Map<Partition, BusFrame>();
        /** Each partition's rows are contiguous: it is drained in one go per batch. */
        const spans = new Map<Partition, { from: number; to: number }>();
        const scoreRun = async () => {
          if (pending === 0) return;
          const from = rows - pending;
          const n = pending;
          pending = 0;
          const started = performance.now();
          await m.score(input, n, output.subarray(from * F, rows * F), {
            severity: severity?.subarray(from * F, rows * F),
            statistic: statistic?.subarray(from * F, rows * F),
          });
          inferenceMs += performance.now() - started;
          keepFlagged(from, n);
        };
        const order = [...partitions.values()];
        rotation = (rotation + 1) % Math.max(1, order.length);
        for (let k = 0; k < order.length && rows < maxBatch; k++) {
          const part = order[(k + rotation) % order.length];
          const from = rows;
          while (!part.closed && !part.releasing && part.frames.length > 0 && rows < maxBatch) {
            const frame = part.frames.shift()!;
            last.set(part, frame);
            const replaying = frame.seq <= part.committed;
            const admission = part.windows.admit(frame.streamId, frame.timestamp, Date.now());
            if (admission.status !== "accepted") {
              if (!replaying) counters.late++;
              continue;
            }
            remember(part, frame.streamId, frame.seq);
            if (replaying) {
              counters.replayed++;
              part.windows.push(frame.streamId, frame.values, scratch, scratchRaw);
              continue;
            }
            const into = input.subarray(pending * windowValues, (pending + 1) * windowValues);
            const intoRaw = raw.subarray(pending * W * nb, (pending + 1) * W * nb);
            if (!part.windows.push(frame.streamId, frame.values, into, intoRaw)) continue;
            rowStream[rows] = frame.streamId;
            rowTs[rows] = frame.timestamp;
            rowReceived[rows] = frame.receivedAt;
            rows++;
            pending++;
            if (pending === runSize) await scoreRun();
          }
          if (last.has(part)) spans.set(part, { from, to: rows });
          if (part.frames.length < readAhead() / 2) {
            const resume = part.resumeReader;
            part.resumeReader = undefined;
            resume?.();
          }
        }
        await scoreRun();
        const completedAt = performance.timeOrigin + performance.now();
        const scored: { stream_id: string; timestamp: string; partition: number }[] = [];
        let alertCount = 0;
        const touched: Partition[] = [];
        for (const [part, { from, to }] of spans) {
          // Fencing: a partition whose lease ran out (say, this process was stopped) is not
          // scored by us any more; its rows are dropped and the new owner scores them.
          if (part.closed || !leases!.owns(part.id)) {
            counters.fenced_rows += to - from;
            continue;
          }
          touched.push(part);
          if (to === from) continue;
          for (let i = from; i < to; i++) {
            const latencyMs = completedAt - rowReceived[i];
            stats.frameScored(latencyMs);
            metrics.frameLatency.record(latencyMs);
            scored.push({
              stream_id: rowStream[i],
              timestamp: new Date(rowTs[i]).toISOString(),
              partition: part.id,
            });
          }
          const view: ScoredBatch = {
            size: to - from,
            scores: output.subarray(from * F),
            severity: severity?.subarray(from * F),
            statistic: statistic?.subarray(from * F),
            // Offsets in these two are absolute, into `flagged` and `evidence` as they are.
            flagged,
            flaggedFrom: flaggedFrom.subarray(from),
            evidenceFrom: evidenceFrom.subarray(from),
            windows: evidence,
            levels: evidenceLevels,
            streamIds: rowStream.slice(from, to),
            timestamps: rowTs.subarray(from, to),
            receivedAt: rowReceived.subarray(from, to),
            spans: noSpans,
            inferenceMs,
            completedAt,
          };
          alertCount += part.pipeline.scored(view, completedAt).alerts;
        }
        if (rows > 0) {
          stats.batchScored(rows, inferenceMs);
          log.info("batch scored", {
            worker: workerId,
            batch_size: rows,
            inference_ms: Math.round(inferenceMs * 1000) / 1000,
            frames: scored,
            alerts: alertCount,
          });
        }
        // Offsets move only once the alerts (and incident state) are durable.
        await Promise.all(touched.map((part) => part.pipeline.flush()));
        for (const part of touched) {
          const frame = last.get(part)!;
          part.done = {
            seq: frame.seq,
            replay: replayPoint(part),
            lag: frame.pending + part.frames.length,
          };
        }
        await Promise.all(touched.map((part) => commit(part, false)));
      } catch (error) {
        log.error("worker batch failed; its partitions are read again", error as Error);
        // Nothing of the batch was committed: re-read the touched partitions from their
        // committed position so no frame is skipped.
        for (const part of [...partitions.values()]) {
          const record = { committed: part.committed, replay: part.replay };
          close(part.id);
          void open(part.id, { ...record, owner: workerId, expires: 0, lag: 0 }).catch((e) =>
            log.error("could not reopen a partition", e as Error, { partition: part.id }),
          );
        }
        await delay(100, stop.signal);
      } finally {
        busy = false;
        const waiting = idle;
        idle = [];
        for (const done of waiting) done();
      }
    }
  }

  async function start(): Promise<void> {
    try {
      model = await loadModel({
        dir: config.MODEL_DIR,
        name: config.DEFAULT_MODEL_NAME,
        device: config.DEFAULT_DEVICE,
        log,
        maxBatch: config.INFERENCE_BATCH_SIZE,
      });
      // One outbox per worker host: replicas sharing a volume (compose) keep separate logs, and a
      // restarted container (same hostname) redelivers what it left behind.
      outbox = await Outbox.open({ dir: join(config.DATA_DIR, `worker-${safeHost}`) });
      alerts = alertDispatcherFor(config, outbox, { log, metrics, fetch: options.fetch });
      alerts.start();
      bus = await connectWithRetry(config, log, `engine-worker-${workerId}`, stop.signal);
      if (config.ALERT_MODE === "incident") {
        incidentKv = await new Kvm(bus.nc).create(`${config.NATS_STREAM}_incidents`, {
          history: 1,
        });
      }
      leases = new PartitionLeases({
        kv: bus.kv,
        partitions: config.NATS_PARTITIONS,
        workerId,
        leaseMs: config.NATS_LEASE_MS,
        log,
        onAcquire: (p, record) => open(p, record),
        async onRelease(p) {
          const part = partitions.get(p);
          if (part) part.releasing = true;
          await whenIdle();
          await part?.pipeline.flush();
          if (part) await commit(part, true);
          if (part) part.closed = true;
          counters.released++;
          close(p);
        },
        onLost(p) {
          counters.lost++;
          close(p);
        },
      });
      loop = runLoop(model);
      leases.start();
      status = "ready";
      log.info("inference worker ready", {
        worker: workerId,
        model: model.metadata.name,
        version: model.metadata.version,
        execution_provider: model.provider,
        stream: config.NATS_STREAM,
        partitions: config.NATS_PARTITIONS,
        outbox_kept: outbox.size,
      });
    } catch (error) {
      status = "failed";
      failure = (error as Error).message;
      throw error;
    }
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    if (status === "ready" || status === "loading") status = "draining";
    const deadline = AbortSignal.timeout(Math.max(1, timeoutMs));
    // Hand every partition over at its committed position, then stop scoring. With NATS
    // unreachable the hand-over cannot be written: the leases then expire on their own.
    const handedOver = leases?.stop().catch((e) => log.warn("hand-over failed", e as Error));
    await Promise.race([handedOver, delay(Math.max(1, timeoutMs / 2), deadline)]);
    stop.abort();
    notify();
    await loop;
    await alerts?.drain(deadline);
    await Promise.allSettled([outbox?.close(), model?.close(), bus?.close()]);
    log.info("inference worker stopped", { worker: workerId, outbox_kept: outbox?.size ?? 0 });
  }

  const app = createRoleApp({
    log,
    readiness,
    middleware: options.middleware,
    stats: () => ({
      ...stats.snapshot({
        queue: { depth: buffered(), capacity: readAhead() * Math.max(1, partitions.size) },
        alerts: {
          generated: alerts?.counts.generated ?? 0,
          delivered: alerts?.counts.delivered ?? 0,
          outbox: alerts?.backlog ?? 0,
        },
        rss_bytes: sampleResources().rss_bytes,
      }),
      role: "worker",
      worker: {
        id: workerId,
        partitions: [...partitions.keys()].sort((a, b) => a - b),
        live_workers: leases?.liveWorkers ?? 0,
        ...counters,
      },
    }),
    resetStats: () => stats.reset(),
  });
  return { app, stats, start, shutdown };
}

function grow<T extends Int32Array | Float32Array>(a: T, need: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, 2 * a.length, 1024));
  b.set(a);
  return b;
}
