// An inference worker: owns partitions by lease, rebuilds windows, drives the window scorer, outboxes alerts, then commits.
import { hostname } from "node:os";
import { join } from "node:path";
import { type KV, Kvm } from "@nats-io/kv";
import { WindowShape } from "../../scoring/window_features.ts";
import { LOG_LEVELS } from "../../telemetry/logger.ts";
import { createEngineMetrics } from "../../telemetry/metrics.ts";
import { hasGpu, sampleResources } from "../../telemetry/resources.ts";
import { delay } from "../_delay.ts";
import type { AlertDispatcher } from "../alert/alert_dispatcher.ts";
import type { AlertPipeline } from "../alert/alert_pipeline.ts";
import { alertDispatcherFor, alertModelFor, alertPipelineFor } from "../alert/from_config.ts";
import { Outbox } from "../alert/outbox.ts";
import type { WindowScorer } from "../batch/window_scorer.ts";
import { connectWithRetry } from "../bus/connect.ts";
import { KvIncidentStateStore } from "../bus/kv_incident_state_store.ts";
import type { NatsBus } from "../bus/nats_bus.ts";
import { PartitionLeases, type PartitionRecord } from "../bus/partition_leases.ts";
import { type BusFrame, PartitionReader, ReadAheadBudget } from "../bus/partition_reader.ts";
import { ReplayRing } from "../bus/replay_ring.ts";
import { type ServedVersion, ServedVersions } from "../bus/served_versions.ts";
import { ModelLoadError } from "../infer/execution_provider.ts";
import type { ScoringModel } from "../infer/load_model.ts";
import { activeOrSeed, loadedKey, NatsModelRegistry } from "../infer/nats_registry.ts";
import { VersionCache } from "../infer/version_cache.ts";
import { ScoringSummary } from "../scoring_summary.ts";
import { EngineStats } from "../stats.ts";
import { StreamWindows } from "../window/stream_windows.ts";
import { createRoleApp } from "./role_app.ts";
import { Lifecycle, type Role, type RoleOptions, readinessBody } from "./role_shell.ts";

export type WorkerRoleOptions = RoleOptions;

interface Partition {
  id: number;
  /** Last sequence whose windows' alerts are in the outbox (replayed, never re-scored). */
  committed: number;
  /** Replay point stored with the last commit (where a re-read must start). */
  replay: number;
  /** Processed and durable in the outbox, not necessarily committed yet. */
  done: { seq: number; replay: number; lag: number } | undefined;
  lastCommitAt: number;
  reader: PartitionReader;
  windows: StreamWindows;
  replayRing: ReplayRing;
  /** Alerts of this partition's streams: frame alerts, or incidents with state in the KV bucket. */
  pipeline: AlertPipeline;
  /** Set when handed over or lost: its frames are no longer taken. */
  closed: boolean;
  /** Being handed over: no new frames are taken, what is durable gets committed. */
  releasing: boolean;
  /** The version the partition's windows and alerts were last scored with. */
  version: string;
  /** A frame taken but left for the next batch: its window is another version's. */
  held: BusFrame | undefined;
}

/** Everything that exists once the worker has started. */
interface Parts {
  /** The active version (what a new partition's windows start with). */
  readonly model: ScoringModel;
  versions: ServedVersions;
  registry: NatsModelRegistry;
  outbox: Outbox;
  alerts: AlertDispatcher;
  bus: NatsBus;
  leases: PartitionLeases;
  incidentKv: KV | undefined;
}

// Unscored frames read ahead, all partitions together, at most this many bytes (the client's
// pulls hold an eighth of it again): a worker that owns every partition of a backlog stays bounded.
const READ_AHEAD_BYTES = 32 * 1024 * 1024;
const COMMIT_EVERY_MS = 100;

/** The batch being filled: the version that scores it, chosen by its first window's frame. */
interface BatchVersion {
  served: ServedVersion | undefined;
}

/**
 * Creates an inference worker. Partitions come and go through {@link PartitionLeases}; for each
 * one it holds, a {@link PartitionReader} reads `<stream>.p.<n>` from the partition's replay point
 * (frames up to the committed sequence only rebuild windows; later ones are scored). One loop
 * takes frames from every partition in turn into a batch of the shared {@link WindowScorer},
 * makes the alerts durable in the outbox (deterministic alert ids), checks the lease is still
 * held and only then commits each partition's sequence. Frames older than the stream's newest
 * (two replicas raced) are dropped and counted as late. A batch is scored by one model version:
 * the one its windows' newest frames name (the ingest replica stamps the active version), so a
 * window re-read after a takeover is scored by the same version; the worker follows the shared
 * registry's pointer and loads a newly activated version before its frames arrive.
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
  const counters = {
    taken: 0,
    replayed: 0,
    late: 0,
    fenced_rows: 0,
    lost: 0,
    acquired: 0,
    released: 0,
  };
  const summary = new ScoringSummary(log, () => counters.taken, { worker: workerId });
  const budget = new ReadAheadBudget(READ_AHEAD_BYTES);
  const lifecycle = new Lifecycle();
  const stop = new AbortController();
  let parts: Parts | undefined;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let idle: (() => void)[] = [];
  let busy = false;
  let rotation = 0;

  const buffered = () => {
    let n = 0;
    for (const part of partitions.values()) {
      n += part.closed || part.releasing ? 0 : part.reader.length + (part.held ? 1 : 0);
    }
    return n;
  };
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  /** Frames the read-ahead budget holds at most (the queue capacity `/stats` reports). */
  const capacity = () =>
    Math.floor(budget.maxBytes / ((parts?.model.metadata.n_features ?? 1) * 4));

  async function open(id: number, record: PartitionRecord): Promise<void> {
    const p = parts as Parts;
    const meta = p.model.metadata;
    // The partition's open incidents, as its previous owner saved them, before any frame.
    const pipeline = alertPipelineFor(config, meta, {
      dispatcher: p.alerts,
      log,
      now: () => Date.now(),
      store: () => new KvIncidentStateStore(p.incidentKv as KV, id),
    });
    await pipeline.start();
    const windows = StreamWindows.forModel(meta);
    const from = record.replay > 0 ? record.replay : record.committed + 1;
    const part: Partition = {
      pipeline,
      id,
      committed: record.committed,
      replay: record.replay,
      done: undefined,
      lastCommitAt: 0,
      reader: new PartitionReader(
        {
          bus: p.bus,
          stream: config.NATS_STREAM,
          partition: id,
          nFeatures: meta.n_features,
          budget,
          log,
          onFrame: notify,
        },
        from,
      ),
      windows,
      replayRing: new ReplayRing(windows.shape.rebuildFrames),
      closed: false,
      releasing: false,
      version: meta.version,
      held: undefined,
    };
    partitions.set(id, part);
    counters.acquired++;
  }

  function close(id: number): void {
    const part = partitions.get(id);
    if (!part) return;
    part.closed = true;
    partitions.delete(id);
    part.reader.close();
    part.pipeline.stop().catch((error) => log.warn("alert pipeline stop failed", error as Error));
  }

  function whenIdle(): Promise<void> {
    if (!busy) return Promise.resolve();
    return new Promise((resolve) => idle.push(resolve));
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
    if (await (parts as Parts).leases.commit(part.id, done.seq, done.replay, done.lag)) {
      part.committed = Math.max(part.committed, done.seq);
      part.replay = done.replay;
    }
  }

  /**
   * The version that scores `frame`'s window in this batch, or undefined when the batch is
   * another version's (the frame waits for the next batch). The batch's first scored frame
   * chooses; a partition meeting a new version takes its model for its windows and alerts.
   */
  async function versionFor(
    part: Partition,
    frame: BusFrame,
    batch: BatchVersion,
  ): Promise<WindowScorer | undefined> {
    const p = parts as Parts;
    const wanted = await p.versions.get(frame.model);
    if (!batch.served) {
      batch.served = wanted;
      wanted.scorer.begin();
    } else if (batch.served !== wanted) {
      return undefined;
    }
    wanted.lastUsed = performance.now();
    if (part.version !== wanted.version) {
      // Same features and window size (the registry refuses others): windows carry over.
      part.windows.adopt(WindowShape.forModel(wanted.meta), "carry");
      part.pipeline.useModel(alertModelFor(config, wanted.meta));
      part.version = wanted.version;
    }
    return wanted.scorer;
  }

  /**
   * Takes partition `part`'s buffered frames into the batch until it is full: frames up to the
   * committed sequence only rebuild windows; the others join the batch when their stream has a
   * full window, unless they name another version than the batch's (the partition stops there
   * until the next batch). Returns the last frame taken, if any.
   */
  async function drain(part: Partition, batch: BatchVersion): Promise<BusFrame | undefined> {
    let last: BusFrame | undefined;
    const p = parts as Parts;
    while (!part.closed && !part.releasing && !batch.served?.scorer.full) {
      const frame = part.held ?? part.reader.take();
      part.held = undefined;
      if (!frame) break;
      const replaying = frame.seq <= part.committed;
      let scorer = batch.served?.scorer ?? p.versions.active.scorer;
      if (!replaying) {
        const chosen = await versionFor(part, frame, batch);
        if (!chosen) {
          part.held = frame;
          break;
        }
        scorer = chosen;
      }
      counters.taken++;
      last = frame;
      const admission = part.windows.admit(frame.streamId, frame.timestamp, Date.now());
      if (admission.status !== "accepted") {
        if (!replaying) counters.late++;
        continue;
      }
      part.replayRing.remember(frame.streamId, frame.seq);
      if (replaying) {
        counters.replayed++;
        // Written where the next window goes, then overwritten by it: never scored.
        part.windows.push(frame.streamId, frame.values, scorer.input(), scorer.raw());
        continue;
      }
      if (!part.windows.push(frame.streamId, frame.values, scorer.input(), scorer.raw())) continue;
      await scorer.add({
        streamId: frame.streamId,
        timestamp: frame.timestamp,
        // The replica's epoch clock, on this process's performance clock.
        receivedAt: frame.receivedAt - performance.timeOrigin,
      });
      if (scorer.failure) throw scorer.failure;
    }
    return last;
  }

  /** Scores one batch across the partitions, makes its alerts durable, then commits. */
  async function scoreBatch(p: Parts): Promise<void> {
    const chosen: BatchVersion = { served: undefined };
    const rows = () => chosen.served?.scorer.rows ?? 0;
    /** Each partition's rows are contiguous: it is drained in one go per batch. */
    const taken = new Map<Partition, { from: number; to: number; last: BusFrame }>();
    const order = [...partitions.values()];
    rotation = (rotation + 1) % Math.max(1, order.length);
    for (let k = 0; k < order.length && !chosen.served?.scorer.full; k++) {
      const part = order[(k + rotation) % order.length];
      const from = rows();
      const last = await drain(part, chosen);
      if (last) taken.set(part, { from, to: rows(), last });
    }
    // Only replayed or late frames: an empty batch still commits their partitions.
    if (!chosen.served) {
      chosen.served = p.versions.active;
      chosen.served.scorer.begin();
    }
    const scorer = chosen.served.scorer;
    const batch = await scorer.finish();
    const latencies = new Float64Array(batch.size);
    let alerts = 0;
    const touched: Partition[] = [];
    for (const [part, { from, to }] of taken) {
      // Fencing: a partition whose lease ran out (say, this process was stopped) is not
      // scored by us any more; its rows are dropped and the new owner scores them.
      if (part.closed || !p.leases.owns(part.id)) {
        counters.fenced_rows += to - from;
        continue;
      }
      touched.push(part);
      if (to === from) continue;
      for (let i = from; i < to; i++) {
        const latencyMs = batch.completedAt - batch.receivedAt[i];
        latencies[i] = latencyMs;
        stats.frameScored(latencyMs);
        metrics.frameLatency.record(latencyMs);
      }
      alerts += part.pipeline.scored(scorer.view(from, to, batch.completedAt)).alerts;
    }
    if (batch.size > 0) {
      stats.batchScored(batch.size, batch.inferenceMs);
      summary.batch(latencies, batch.inferenceMs, alerts);
      // Built only when it is logged: at the default level a batch allocates no log line.
      if (log.level >= LOG_LEVELS.debug) {
        log.debug("batch scored", {
          worker: workerId,
          model_version: chosen.served.version,
          batch_size: batch.size,
          inference_ms: Math.round(batch.inferenceMs * 1000) / 1000,
          frames: [...taken].flatMap(([part, { from, to }]) =>
            Array.from({ length: to - from }, (_, j) => ({
              stream_id: batch.streamIds[from + j],
              timestamp: new Date(batch.timestamps[from + j]).toISOString(),
              partition: part.id,
            })),
          ),
          alerts,
        });
      }
    }
    // Offsets move only once the alerts (and incident state) are durable.
    await Promise.all(touched.map((part) => part.pipeline.flush()));
    for (const part of touched) {
      const { last } = taken.get(part) as { last: BusFrame };
      part.done = {
        seq: last.seq,
        replay: part.replayRing.replayPoint(),
        lag: last.pending + part.reader.length,
      };
    }
    await Promise.all(touched.map((part) => commit(part, false)));
  }

  async function runLoop(p: Parts): Promise<void> {
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
        // Between two batches: versions no frame has named for two lease periods are closed.
        await p.versions.sweep(2 * config.NATS_LEASE_MS);
        await scoreBatch(p);
      } catch (error) {
        log.error("worker batch failed; its partitions are read again", error as Error);
        // Nothing of the batch was committed: re-read the partitions from their committed
        // position so no frame is skipped.
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

  /** Tells the replicas answering an activation which versions this worker has loaded. */
  async function reportLoaded(p: Pick<Parts, "registry" | "versions">): Promise<void> {
    const value = {
      name: config.DEFAULT_MODEL_NAME,
      active: p.versions.active.version,
      versions: p.versions.versions,
      at: new Date().toISOString(),
    };
    await p.registry.kv
      .put(loadedKey(workerId), JSON.stringify(value))
      .catch((error) => log.warn("could not report the loaded versions", error as Error));
  }

  /**
   * The shared registry's active version of the served model, loaded (the registry is seeded
   * from MODEL_DIR when it has none), and a watch that loads each newly activated version.
   */
  async function serveVersions(bus: NatsBus): Promise<Pick<Parts, "registry" | "versions">> {
    let served: Pick<Parts, "registry" | "versions">;
    try {
      const registry = await NatsModelRegistry.open(bus.nc, config.NATS_STREAM);
      const active = await activeOrSeed(registry, config, `worker ${workerId}`);
      const cache = new VersionCache(join(config.DATA_DIR, "models"), registry);
      await cache.clean();
      const versions = new ServedVersions({
        config,
        log,
        registry,
        cache,
        name: config.DEFAULT_MODEL_NAME,
      });
      await versions.activate(active.version);
      served = { registry, versions };
    } catch (error) {
      throw new ModelLoadError(
        `cannot load model ${config.DEFAULT_MODEL_NAME}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    void served.registry.follow(
      config.DEFAULT_MODEL_NAME,
      stop.signal,
      async function onPointer(record) {
        try {
          const before = served.versions.active.version;
          await served.versions.activate(record.version);
          if (before !== record.version) {
            log.info("model version active", {
              worker: workerId,
              version: record.version,
              from: before,
            });
          }
        } catch (error) {
          log.error(
            "the registry's active version cannot be loaded; frames naming it are loaded on arrival",
            error as Error,
            {
              version: record.version,
            },
          );
        }
        await reportLoaded(served);
      },
      (error) => log.warn("registry pointer watch failed; watching again", error),
    );
    return served;
  }

  function start(): Promise<void> {
    return lifecycle.starting(async () => {
      // One outbox per worker host: replicas sharing a volume (compose) keep separate logs, and a
      // restarted container (same hostname) redelivers what it left behind.
      const outbox = await Outbox.open({ dir: join(config.DATA_DIR, `worker-${safeHost}`) });
      const alerts = alertDispatcherFor(config, outbox, { log, metrics, fetch: options.fetch });
      alerts.start();
      const bus = await connectWithRetry(config, log, `engine-worker-${workerId}`, stop.signal);
      const { registry, versions } = await serveVersions(bus).catch(async (error) => {
        await Promise.allSettled([bus.close(), outbox.close()]);
        throw error;
      });
      const model = versions.active.model;
      const incidentKv =
        config.ALERT_MODE === "incident"
          ? await new Kvm(bus.nc).create(`${config.NATS_STREAM}_incidents`, { history: 1 })
          : undefined;
      const leases = new PartitionLeases({
        kv: bus.kv,
        partitions: config.NATS_PARTITIONS,
        workerId,
        leaseMs: config.NATS_LEASE_MS,
        log,
        onAcquire: (id, record) => open(id, record),
        async onRelease(id) {
          const part = partitions.get(id);
          if (part) part.releasing = true;
          await whenIdle();
          await part?.pipeline.flush();
          if (part) await commit(part, true);
          if (part) part.closed = true;
          counters.released++;
          close(id);
        },
        onLost(id) {
          counters.lost++;
          close(id);
        },
      });
      parts = {
        get model() {
          return versions.active.model;
        },
        versions,
        registry,
        outbox,
        alerts,
        bus,
        leases,
        incidentKv,
      };
      loop = runLoop(parts);
      leases.start();
      summary.start();
      lifecycle.ready();
      log.info("inference worker ready", {
        worker: workerId,
        model: model.metadata.name,
        version: model.metadata.version,
        execution_provider: model.provider,
        stream: config.NATS_STREAM,
        partitions: config.NATS_PARTITIONS,
        outbox_kept: outbox.size,
      });
    });
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    const deadline = lifecycle.stopping(timeoutMs);
    // Hand every partition over at its committed position, then stop scoring. With NATS
    // unreachable the hand-over cannot be written: the leases then expire on their own.
    const handedOver = parts?.leases.stop().catch((e) => log.warn("hand-over failed", e as Error));
    await Promise.race([handedOver, delay(Math.max(1, timeoutMs / 2), deadline)]);
    stop.abort();
    notify();
    await loop;
    summary.stop();
    for (const id of [...partitions.keys()]) close(id);
    await parts?.alerts.drain(deadline);
    await parts?.registry.kv.delete(loadedKey(workerId)).catch(() => {});
    await Promise.allSettled([parts?.outbox.close(), parts?.versions.close(), parts?.bus.close()]);
    log.info("inference worker stopped", {
      worker: workerId,
      outbox_kept: parts?.outbox.size ?? 0,
    });
  }

  const app = createRoleApp({
    log,
    middleware: options.middleware,
    readiness: () =>
      readinessBody(lifecycle, {
        meta: parts?.model.metadata,
        provider: parts?.model.provider ?? null,
        gpuAvailable: hasGpu(),
        queue: { depth: buffered(), capacity: capacity() },
      }),
    stats: () => ({
      ...stats.snapshot({
        queue: { depth: buffered(), capacity: capacity() },
        alerts: {
          generated: parts?.alerts.counts.generated ?? 0,
          delivered: parts?.alerts.counts.delivered ?? 0,
          outbox: parts?.alerts.backlog ?? 0,
        },
        rss_bytes: sampleResources().rss_bytes,
      }),
      role: "worker",
      worker: {
        id: workerId,
        partitions: [...partitions.keys()].sort((a, b) => a - b),
        live_workers: parts?.leases.liveWorkers ?? 0,
        read_ahead_bytes: budget.used,
        ...counters,
      },
      model: parts
        ? {
            name: config.DEFAULT_MODEL_NAME,
            active_version: parts.versions.active.version,
            loaded_versions: parts.versions.versions,
          }
        : null,
    }),
    resetStats: () => stats.reset(),
  });
  return { app, stats, start, shutdown };
}
