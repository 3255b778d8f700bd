// An inference worker: owns partitions by lease, rebuilds windows, drives the window scorer, outboxes alerts, then commits.
import { hostname } from "node:os";
import { join } from "node:path";
import type { KV } from "@nats-io/kv";
import { context, type Link, type ObservableResult, trace } from "@opentelemetry/api";
import { StreamRoutes } from "../../contracts/model_routes.ts";
import { WindowShape } from "../../scoring/window_features.ts";
import { LOG_LEVELS } from "../../telemetry/logger.ts";
import { createEngineMetrics } from "../../telemetry/metrics.ts";
import { hasGpu, sampleResources } from "../../telemetry/resources.ts";
import { kvBucket } from "../_buckets.ts";
import { delay } from "../_delay.ts";
import type { AlertDispatcher } from "../alert/alert_dispatcher.ts";
import type { AlertPipeline } from "../alert/alert_pipeline.ts";
import { alertDispatcherFor, alertModelFor, alertPipelineFor } from "../alert/from_config.ts";
import { Outbox } from "../alert/outbox.ts";
import type { WindowScorer } from "../batch/window_scorer.ts";
import { BusRepair } from "../bus/bus_repair.ts";
import { connectWithRetry } from "../bus/connect.ts";
import { KvIncidentStateStore, moveLegacyKvStates } from "../bus/kv_incident_state_store.ts";
import {
  type MachineOff,
  MachineOffBoard,
  machineOffTtlMs,
  mergeSilent,
  type OwnedPartition,
} from "../bus/machine_off_board.ts";
import type { NatsBus } from "../bus/nats_bus.ts";
import { PartitionLeases, type PartitionRecord } from "../bus/partition_leases.ts";
import { type BusFrame, PartitionReader, ReadAheadBudget } from "../bus/partition_reader.ts";
import { ReplayRing } from "../bus/replay_ring.ts";
import { ScoredFrames } from "../bus/scored_frames.ts";
import { type ScoringFigures, ScoringRollCall } from "../bus/scoring_roll_call.ts";
import { type PartitionSeen, SeenStreamsBoard } from "../bus/seen_streams_board.ts";
import { ServedModels } from "../bus/served_models.ts";
import type { ServedVersion, ServedVersions } from "../bus/served_versions.ts";
import { WorkerEvidence } from "../bus/worker_evidence.ts";
import { decisionsFor, decisionsReadiness } from "../decisions/mod.ts";
import { BatchFrames, historyRecordersFor } from "../history/mod.ts";
import { ModelLoadError } from "../infer/execution_provider.ts";
import type { ScoringModel } from "../infer/load_model.ts";
import { loadedKey, NatsModelRegistry } from "../infer/nats_registry.ts";
import { VersionCache } from "../infer/version_cache.ts";
import { type RetrainScheduler, sharedRetrainSchedulerFor } from "../retrain/mod.ts";
import { ScoringSummary } from "../scoring_summary.ts";
import { EngineStats, unscoredModel } from "../stats.ts";
import { confirmsStop, joinsWindow, MachineStates } from "../window/machine_states.ts";
import { StreamWindows, streamLimitsOf } from "../window/stream_windows.ts";
import { createRoleApp } from "./role_app.ts";
import {
  Lifecycle,
  type Role,
  type RoleOptions,
  readinessBody,
  servesLoopbackOnly,
} from "./role_shell.ts";

export type WorkerRoleOptions = RoleOptions;

/** One model's share of a partition: the windows and alerts of its streams routed to that model. */
interface ModelPart {
  windows: StreamWindows;
  replayRing: ReplayRing;
  /** Alerts of these streams: frame alerts, or incidents with state in the KV bucket. */
  pipeline: AlertPipeline;
  /** These streams' stopped machines (the scoring version's running condition), as the single process keeps them. */
  machine: MachineStates;
  /**
   * Stops met in the round being filled, in frame order: `row` is the model's batch size when
   * the stop came, so the alert path hears it after the windows before it and before those after.
   */
  stops: { row: number; streamId: string; at: number }[];
  /** The version these windows and alerts were last scored with. */
  version: string;
}

interface Partition {
  id: number;
  /** Last sequence whose windows' alerts are in the outbox (replayed, never re-scored). */
  committed: number;
  /** Replay point stored with the last commit (where a re-read must start). */
  replay: number;
  /** Newest `receivedAt` of its frames read (bus time): when its streams last sent is judged by it. */
  busTime: number;
  /** When this worker took it (epoch ms): its claim on the machine-off board. */
  openedAt: number;
  /** Processed and durable in the outbox, not necessarily committed yet. */
  done: { seq: number; replay: number; lag: number } | undefined;
  lastCommitAt: number;
  reader: PartitionReader;
  /** Per model name, the partition's streams of that model (`MODEL_ROUTES`). */
  models: Map<string, ModelPart>;
  /**
   * Its streams seen, kept in the board across owners: a stream gone silent under an earlier
   * owner, which these windows never held, is still listed.
   */
  seen: PartitionSeen;
  /** Set when handed over or lost: its frames are no longer taken. */
  closed: boolean;
  /** Being handed over: no new frames are taken, what is durable gets committed. */
  releasing: boolean;
  /** A frame taken but left for the next batch: its model's batch is full or another version's. */
  held: BusFrame | undefined;
}

/** Everything that exists once the worker has started. */
interface Parts {
  /** The default model's active version (readiness, logs). */
  readonly model: ScoringModel;
  /** Each model served, its versions loaded (a new partition's windows start with the active one). */
  models: ServedModels;
  registry: NatsModelRegistry;
  outbox: Outbox;
  alerts: AlertDispatcher;
  bus: NatsBus;
  leases: PartitionLeases;
  incidentKv: KV | undefined;
  /** Where this worker posts its stopped machines and silent streams for the replicas' `/stats`. */
  machineOffBoard: MachineOffBoard;
  /** Where each partition's streams seen are kept for its next owner. */
  seenBoard: SeenStreamsBoard;
  /** Incident context per model: the frames taken, and what alerts build from them. */
  evidence: WorkerEvidence;
  /** The posting loop, ended by `stop`. */
  posting: Promise<void>;
  /** Purges what no owner reads again, after each commit. */
  scoredFrames: ScoredFrames;
  /** Makes the stream and buckets again when the server lost them. */
  repair: BusRepair;
}

// Unscored frames read ahead, all partitions together, at most this many bytes (the client's
// pulls hold an eighth of it again): a worker that owns every partition of a backlog stays bounded.
const READ_AHEAD_BYTES = 32 * 1024 * 1024;
const COMMIT_EVERY_MS = 100;
/** While the outbox is full (nothing committed), each partition's lag is written this often. */
const LAG_REPORT_MS = 1000;
/** Each partition's streams seen are written this often when they changed (the single process's period). */
const SEEN_SAVE_MS = 5000;
/** A partition taken waits this long at most for its streams seen before its frames are read. */
const SEEN_READ_MS = 1000;

/**
 * The batches being filled in one round, one per model: the version that scores each, chosen by
 * the first of its windows' frames.
 */
type Round = Map<string, ServedVersion>;

/** Per model, the rows one partition added to that model's batch (contiguous: drained at once). */
type Ranges = Map<string, { from: number; to: number }>;

/**
 * Creates an inference worker. Partitions come and go through {@link PartitionLeases}; for each
 * one it holds, a {@link PartitionReader} reads `<stream>.p.<n>` from the partition's replay point
 * (frames up to the committed sequence only rebuild windows; later ones are scored). One loop
 * takes frames from every partition in turn into a batch of the shared {@link WindowScorer},
 * makes the alerts durable in the outbox (deterministic alert ids), checks the lease is still
 * held and only then commits each partition's sequence. Frames older than the stream's newest
 * (two replicas raced) are dropped and counted as late. Frames of several models share a
 * partition (`MODEL_ROUTES`): each frame names its model, and a round fills one batch per model,
 * each partition keeping per model its streams' windows and alert pipeline. A batch is scored by
 * one version of its model: the one its windows' newest frames name (the ingest replica stamps
 * the active version), so a window re-read after a takeover is scored by the same version; the
 * worker follows each model's pointer in the shared registry and loads a newly activated version
 * before its frames arrive.
 */
export function createWorkerRole(options: WorkerRoleOptions): Role & { stats: EngineStats } {
  const { config, log } = options;
  const metrics = createEngineMetrics();
  const tracer = trace.getTracer("engine");
  /** Frames whose replica's clock ran ahead of ours, since the last warning about it. */
  const skew = { frames: 0, worstMs: 0, warnedAt: Number.NEGATIVE_INFINITY };
  function clockSkewed(latencyMs: number): void {
    skew.frames++;
    skew.worstMs = Math.min(skew.worstMs, latencyMs);
    const at = Date.now();
    if (at - skew.warnedAt < 60_000) return;
    skew.warnedAt = at;
    log.warn("an ingest replica's clock is ahead of this worker's: frame latency counted as 0", {
      frames: skew.frames,
      ahead_ms: Math.round(-skew.worstMs * 1000) / 1000,
    });
    skew.frames = 0;
    skew.worstMs = 0;
  }
  const stats = new EngineStats();
  const safeHost =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, "-")
      .slice(0, 40) || "host";
  const workerId =
    config.NATS_WORKER_ID || `${safeHost}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  /** Per model, the newest frame of each row of the batch being filled (only while recording). */
  const batchFrames = new Map<string, BatchFrames>();
  const framesOf = (name: string) => {
    let frames = batchFrames.get(name);
    if (!frames) {
      frames = new BatchFrames();
      batchFrames.set(name, frames);
    }
    return frames;
  };
  // Named by NATS_WORKER_ID or the host: a restarted worker goes on in the same folders.
  const writer = config.NATS_WORKER_ID || safeHost;
  // Operators' silences and verdicts (DECISIONS_POLL_S), pulled as the single process does, the
  // last good copy in this worker's own folder of DATA_DIR/decisions (workers share a volume).
  const decisions = decisionsFor(config, { log, fetch: options.fetch, writer });
  // `/stats` shows where its copy stands; readiness says when it is stale and stays ready.
  if (decisions) stats.decisions = () => decisions.report();
  // Each model's training history, in this worker's own folder of HISTORY_DIR/<model>: silenced
  // frames left out, verdicts in the index. A stopped machine's frames are never scored (drain
  // drops them, as the single process's batcher does), so none reaches it.
  // Every model this worker loaded has its recorder from then on, scored or not.
  const training = historyRecordersFor(config, {
    log,
    writer,
    decisions,
    served: () => parts?.models.all.map((m) => m.active.meta) ?? [],
  });
  let retraining: RetrainScheduler | undefined;
  const partitions = new Map<number, Partition>();
  const counters = {
    taken: 0,
    replayed: 0,
    late: 0,
    fenced_rows: 0,
    lost: 0,
    acquired: 0,
    released: 0,
    /** Frames no model here can score (a model the registry lacks, a size not its model's). */
    skipped: 0,
    /**
     * Frames of a new stream while MAX_STREAMS others of the partition's model were active (the
     * replica accepted them; this worker has no place to score them): warned once a minute.
     */
    streams_refused: 0,
  };
  let refusedWarnedAt = Number.NEGATIVE_INFINITY;
  /** Since when (epoch ms) the outbox has been full and no frame taken; 0 while it is not. */
  let outboxFullSince = 0;
  /** Models and versions whose frames did not fit, logged once each. */
  const misfits = new Set<string>();
  /**
   * Partitions whose rows were dropped by fencing while the lease may still be ours (a renewal
   * answered after the local validity ran out): their frames were taken from the reader, so they
   * are read again from the committed position once the lease is valid again, or forgotten when
   * it is lost.
   */
  const fenced = new Map<
    number,
    { committed: number; replay: number; stopped: Promise<unknown> }
  >();
  const summary = new ScoringSummary(log, () => counters.taken, { worker: workerId });
  const budget = new ReadAheadBudget(READ_AHEAD_BYTES);
  const lifecycle = new Lifecycle();
  const stop = new AbortController();
  let parts: Parts | undefined;
  // `/stats` shows the incident history budget of the models this worker serves.
  stats.evidence = () =>
    parts?.evidence.report() ?? { streams: 0, capacity: 0, bytes: 0, ringless: 0, evictions: 0 };
  let loop: Promise<void> | undefined;
  /** The loop writing each partition's streams seen ({@link keepSeen}). */
  let seenKept: Promise<void> | undefined;
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
  /** The largest frame of the models served, in values. */
  const maxFeatures = () =>
    Math.max(1, ...(parts?.models.all.map((m) => m.active.meta.n_features) ?? []));
  /** Frames the read-ahead budget holds at most (the queue capacity `/stats` reports). */
  const capacity = () => budget.capacity(maxFeatures());
  /** Frames of partition `id` not taken yet: read ahead, held for the next round, or not read. */
  const lagOf = (id: number) => {
    const part = partitions.get(id);
    return part && !part.closed ? part.reader.backlog + (part.held ? 1 : 0) : undefined;
  };
  /** When the lag was last written while the outbox is full (`performance.now()`). */
  let lagReportedAt = Number.NEGATIVE_INFINITY;
  /** Stopped machines of the partitions held (a model's running condition fails). */
  const machineOff = (): MachineOff[] =>
    [...partitions.values()].flatMap((part) =>
      [...part.models.values()].flatMap((m) => m.machine.list()),
    );

  /**
   * Partition `part`'s bus time now: while frames of it wait unread (a backlog being worked off),
   * the newest reception time taken; once every frame is read, this worker's clock. A stream is
   * silent by the replicas' reception times, not by when this worker reads its frames.
   */
  const busNow = (part: Partition) =>
    lagOf(part.id) === 0 ? Math.max(Date.now(), part.busTime) : part.busTime;
  /** Partition `part`'s windows, one per model. */
  const lanesOf = (part: Partition) => [...part.models.values()].map((m) => m.windows);
  /**
   * The partitions held, each with its streams gone silent (no frame accepted for longer than
   * INCIDENT_STALE_MS and 10 of their own intervals, in bus time), posted for the replicas. A
   * partition lost or handed over is no longer held (`close`), so its streams are only ever
   * judged by the worker that reads them now.
   */
  const ownedPartitions = (): OwnedPartition[] =>
    [...partitions.values()].map((part) => {
      const now = busNow(part);
      const lanes = lanesOf(part);
      return {
        partition: part.id,
        since: new Date(part.openedAt).toISOString(),
        silent: [
          ...lanes.flatMap((windows) => windows.silent(now, config.INCIDENT_STALE_MS)),
          // And those only remembered: gone silent under an earlier owner, or forgotten at MAX_STREAMS.
          ...part.seen.silent(now, config.INCIDENT_STALE_MS, lanes),
        ],
      };
    });

  /** Alerts the partitions' pipelines hold (their state not kept yet), and why, as `/stats` says. */
  const heldAlerts = (): { held: number; held_reason?: string } => {
    let held = 0;
    let reason: string | undefined;
    for (const [id, part] of partitions) {
      for (const [model, m] of part.models) {
        held += m.pipeline.heldAlerts;
        const why = m.pipeline.heldBecause;
        if (why && reason === undefined) reason = `partition ${id}, model ${model}: ${why.reason}`;
      }
    }
    return reason === undefined ? { held } : { held, held_reason: reason };
  };
  stats.alertCounts = () => parts?.alerts.counts;
  /** The worker's counters and samples, as its `/stats` serves them. */
  const snapshot = (rssBytes: number) =>
    stats.snapshot({
      queue: { depth: buffered(), capacity: capacity() },
      alerts: {
        generated: parts?.alerts.counts.generated ?? 0,
        delivered: parts?.alerts.counts.delivered ?? 0,
        outbox: parts?.alerts.backlog ?? 0,
        ...heldAlerts(),
      },
      rss_bytes: rssBytes,
      served: parts?.models.all.map((m) => ({ name: m.name })) ?? [],
    });
  /** What this worker answers an ingest replica's roll call with (its `/stats` gathers them). */
  function scoring(): ScoringFigures {
    const { frames, batches, queue, latency_ms, inference_ms, alerts } = snapshot(0);
    const held = [...partitions.keys()].sort((a, b) => a - b);
    return {
      partitions: held,
      frames: { scored: frames.scored },
      batches,
      queue,
      latency_ms,
      inference_ms,
      alerts,
    };
  }
  // `engine.queue.depth` of a worker is its read-ahead: frames read from its partitions and not
  // yet taken into a batch (its `/stats` `queue.depth`); the stream's backlog is each partition's `lag`.
  function observeQueue(r: ObservableResult): void {
    r.observe(buffered());
  }
  function observeOutbox(r: ObservableResult): void {
    if (parts) r.observe(parts.outbox.size);
  }

  /**
   * Model `served`'s part of partition `id`: its windows, and its alert pipeline with the open
   * incidents its previous owner saved (loaded before any of its frames is scored). The saved
   * state can be ahead of `committed`, where the reading starts again: the pipeline ignores
   * re-read windows of streams it forgot after them (`replays`) until a commit passes them.
   */
  async function modelPart(
    id: number,
    served: ServedVersions,
    committed: number,
  ): Promise<ModelPart> {
    const p = parts as Parts;
    const meta = served.active.meta;
    const pipeline = alertPipelineFor(config, meta, {
      evidence: p.evidence.for(served.name, served.active),
      dispatcher: p.alerts,
      log,
      now: () => Date.now(),
      // Each model its own keys, whether it is the default or routed.
      store: () => new KvIncidentStateStore(p.incidentKv as KV, id, served.name),
      replays: true,
    });
    await pipeline.start();
    pipeline.committed(committed);
    const windows = StreamWindows.forModel(meta, streamLimitsOf(config));
    return {
      windows,
      // A stream silent past the machine-off gap rule (bus time), or whose frames aged out,
      // holds no replay point (nor the purge) back.
      replayRing: new ReplayRing(windows.shape.rebuildFrames, {
        maxStreams: config.MAX_STREAMS,
        idleMs: config.INCIDENT_STALE_MS,
        maxAgeMs: config.NATS_STREAM_MAX_AGE_S * 1000,
      }),
      pipeline,
      machine: MachineStates.fromConfig(config, (streamId, doubt) =>
        log.warn(
          "a stopped machine reads as running: its running condition's sensor may have failed; nothing of it is scored",
          { model: meta.name, stream: streamId, ...doubt },
        ),
      ),
      stops: [],
      version: meta.version,
    };
  }

  /** `served`'s part of `part`, made on its first frame when the model was not served at open. */
  async function partOf(part: Partition, served: ServedVersions): Promise<ModelPart> {
    const known = part.models.get(served.name);
    if (known) return known;
    const made = await modelPart(part.id, served, part.committed);
    part.models.set(served.name, made);
    if (part.closed) made.pipeline.stop().catch(() => {});
    return made;
  }

  async function open(id: number, record: PartitionRecord): Promise<void> {
    const p = parts as Parts;
    // Every served model's open incidents, as the previous owner saved them, before any frame;
    // those an earlier release kept under the default model's keys first go to their model's.
    const rehomed = p.incidentKv
      ? await moveLegacyKvStates(p.incidentKv, id, config.DEFAULT_MODEL_NAME)
      : 0;
    if (rehomed > 0)
      log.info("incident states moved to their model's keys", { partition: id, states: rehomed });
    const models = new Map<string, ModelPart>();
    for (const served of p.models.all) {
      models.set(served.name, await modelPart(id, served, record.committed));
    }
    const from = record.replay > 0 ? record.replay : record.committed + 1;
    // Its streams seen before its frames: unanswered, it is scored meanwhile and read again later.
    const seen = p.seenBoard.partition(id);
    await seen.ready(AbortSignal.timeout(SEEN_READ_MS));
    const part: Partition = {
      models,
      seen,
      id,
      committed: record.committed,
      replay: record.replay,
      busTime: Number.NEGATIVE_INFINITY,
      openedAt: Date.now(),
      done: undefined,
      lastCommitAt: 0,
      reader: new PartitionReader(
        {
          bus: p.bus,
          stream: config.NATS_STREAM,
          partition: id,
          nFeatures: maxFeatures(),
          budget,
          log,
          onFrame: notify,
          onError: (error) => p.repair.noticed(error),
        },
        from,
      ),
      closed: false,
      releasing: false,
      held: undefined,
    };
    partitions.set(id, part);
    counters.acquired++;
  }

  /** Stops reading partition `id` and taking its frames; resolves once its pipelines stopped. */
  function close(id: number): Promise<unknown> {
    const part = partitions.get(id);
    if (!part) return Promise.resolve();
    part.closed = true;
    partitions.delete(id);
    part.reader.close();
    parts?.scoredFrames.forget(id);
    // Its streams are another worker's now: their history there starts a run of its own.
    for (const [name, m] of part.models) training?.forget(name, m.windows.streamIds());
    return Promise.all(
      [...part.models.values()].map((m) =>
        m.pipeline.stop().catch((error) => log.warn("alert pipeline stop failed", error as Error)),
      ),
    );
  }

  /** Partitions fenced earlier whose lease is valid again, read again from their committed position. */
  async function reopenFenced(p: Parts): Promise<void> {
    for (const [id, { committed, replay, stopped }] of fenced) {
      if (!p.leases.owns(id)) continue;
      fenced.delete(id);
      await stopped;
      log.info("partition read again from its committed position after fencing", {
        partition: id,
        committed,
      });
      await open(id, { committed, replay, owner: workerId, expires: 0, lag: 0 }).catch((e) => {
        log.error("could not reopen a partition", e as Error, { partition: id });
        fenced.set(id, { committed, replay, stopped: Promise.resolve() });
      });
    }
  }

  /** Waits until every alert of `part`'s batches so far is in the outbox (and its state saved). */
  function flushed(part: Partition): Promise<unknown> {
    return Promise.all([...part.models.values()].map((m) => m.pipeline.flush()));
  }

  /** Where a new owner must read `part` again from: the oldest frame any of its windows needs. */
  function replayPoint(part: Partition): number {
    let min = 0;
    for (const m of part.models.values()) {
      const point = m.replayRing.replayPoint(part.busTime);
      if (point > 0 && (min === 0 || point < min)) min = point;
    }
    return min;
  }

  /** Writes each partition's streams seen every {@link SEEN_SAVE_MS} until stopped (never rejects). */
  async function keepSeen(): Promise<void> {
    while (await delay(SEEN_SAVE_MS, stop.signal)) {
      for (const part of [...partitions.values()]) {
        if (!part.closed) await part.seen.save(lanesOf(part));
      }
    }
  }

  function whenIdle(): Promise<void> {
    if (!busy) return Promise.resolve();
    return new Promise((resolve) => idle.push(resolve));
  }

  /** Not busy any more: whoever waits for that ({@link whenIdle}) goes on. */
  function settle(): void {
    busy = false;
    const waiting = idle;
    idle = [];
    for (const done of waiting) done();
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
      // No window up to here is read again: forgotten streams' markers can go, and the frames
      // below the replay point leave the stream.
      for (const m of part.models.values()) m.pipeline.committed(part.committed);
      const from = done.seq + 1;
      (parts as Parts).scoredFrames.committed(
        part.id,
        done.replay > 0 ? Math.min(done.replay, from) : from,
      );
    }
  }

  /**
   * The version that scores `frame`'s window in this round, or undefined when its model's batch
   * is full or another version's (the frame waits for the next round). The first frame of a
   * model in a round chooses its version; a partition's model part meeting a new version takes
   * it for its windows and alerts.
   */
  async function versionFor(
    part: Partition,
    served: ServedVersions,
    frame: BusFrame,
    round: Round,
  ): Promise<ServedVersion | undefined> {
    const wanted = await served.get(frame.model);
    const chosen = round.get(served.name);
    if (!chosen) {
      round.set(served.name, wanted);
      await wanted.scorer.begin();
    } else if (chosen !== wanted || chosen.scorer.full) {
      return undefined;
    }
    wanted.lastUsed = performance.now();
    const m = await partOf(part, served);
    if (m.version !== wanted.version) {
      // Same features and window size (the registry refuses others): windows carry over.
      const shape = WindowShape.forModel(wanted.meta);
      m.windows.adopt(shape, "carry");
      // A version with running levels rebuilds a window from more frames: the replay point
      // keeps them for a new owner from now on (never fewer, should an older version come back).
      m.replayRing.keepAtLeast(shape.rebuildFrames);
      m.pipeline.useModel({
        ...alertModelFor(config, wanted.meta),
        evidence: (parts as Parts).evidence.for(served.name, wanted),
      });
      m.version = wanted.version;
    }
    return wanted;
  }

  /** Whether `frame` has the size of `version`'s frames (always, when an ingest replica sent it). */
  function fits(frame: BusFrame, version: ServedVersion, name: string): boolean {
    if (frame.values.length === version.meta.n_features) return true;
    counters.skipped++;
    const key = `${name}@${version.version}`;
    if (!misfits.has(key)) {
      misfits.add(key);
      log.error("frames on the bus do not fit the model they name; skipped", {
        model: name,
        version: version.version,
        values: frame.values.length,
        n_features: version.meta.n_features,
        stream_id: frame.streamId,
      });
    }
    return false;
  }

  /**
   * Takes partition `part`'s buffered frames into the round's batches: frames up to the committed
   * sequence only rebuild windows; the others join their model's batch when their stream has a
   * full window, unless that batch is full or another version's (the partition stops there until
   * the next round). A stopped machine's frame (the version's running condition fails) is judged
   * as the single process's batcher judges it (`MachineStates.judge`): it restarts its stream's
   * window and is dropped, replayed or not, and still counts as taken (the partition commits past
   * it); a stop met past the committed sequence is noted for the alert path. Notes in `ranges`
   * the rows it added per model. Returns the last frame taken.
   */
  async function drain(
    part: Partition,
    round: Round,
    ranges: Ranges,
  ): Promise<BusFrame | undefined> {
    let last: BusFrame | undefined;
    const p = parts as Parts;
    while (!part.closed && !part.releasing) {
      const frame = part.held ?? part.reader.take();
      part.held = undefined;
      if (!frame) break;
      if (frame.receivedAt > part.busTime) part.busTime = frame.receivedAt;
      const served = p.models.loaded(frame.modelName) ?? (await p.models.get(frame.modelName));
      if (!served) {
        // A model the registry does not hold (logged once): nothing here can score it.
        counters.skipped++;
        last = frame;
        continue;
      }
      const name = served.name;
      const replaying = frame.seq <= part.committed;
      let version = round.get(name) ?? served.active;
      if (!replaying) {
        const chosen = await versionFor(part, served, frame, round);
        if (!chosen) {
          part.held = frame;
          break;
        }
        version = chosen;
      }
      last = frame;
      if (!fits(frame, version, name)) continue;
      const m = await partOf(part, served);
      const scorer = version.scorer;
      counters.taken++;
      // At the replica's reception time: a backlog read late, or re-read by a new owner, keeps
      // when its streams really sent (their silence is judged by it).
      const admission = m.windows.admit(frame.streamId, frame.timestamp, frame.receivedAt);
      if (admission.status === "too_many_streams") {
        counters.streams_refused++;
        if (Date.now() - refusedWarnedAt >= 60_000) {
          refusedWarnedAt = Date.now();
          log.warn("frames of a new stream are not scored: MAX_STREAMS streams are active", {
            stream_id: frame.streamId,
            model: name,
            partition: part.id,
            max_streams: admission.maxStreams,
            streams_refused: counters.streams_refused,
          });
        }
        continue;
      }
      if (admission.status !== "accepted") {
        if (!replaying) counters.late++;
        continue;
      }
      // Replayed frames too: a partition taken over rebuilds what history it can.
      p.evidence.record(name, frame.streamId, frame.timestamp, frame.values);
      // A stopped frame too: the replay point moves on during a long stop, and a new owner's
      // replay meets the stop again and restarts the window as this one did. Whether a window
      // restarts is the stream-time rule's alone (the machine judge below): a stream back after a
      // silence in bus time with frame times that run on (a forwarded backlog) continues it.
      m.replayRing.remember(frame.streamId, frame.seq, frame.receivedAt);
      const judged = m.machine.judge(
        version.meta,
        frame.streamId,
        frame.timestamp,
        frame.values,
        m.windows,
      );
      // A replayed stop was told to the alert path by the previous owner: its incident state
      // (saved before that commit) already holds it.
      if (confirmsStop(judged) && !replaying) {
        m.stops.push({ row: scorer.rows, streamId: frame.streamId, at: m.machine.stopAt });
      }
      if (!joinsWindow(judged)) {
        if (replaying) counters.replayed++;
        continue;
      }
      if (replaying) {
        counters.replayed++;
        // Written where the next window goes, then overwritten by it: never scored.
        m.windows.push(frame.streamId, frame.values, scorer.input(), scorer.raw());
        continue;
      }
      if (!m.windows.push(frame.streamId, frame.values, scorer.input(), scorer.raw())) continue;
      let range = ranges.get(name);
      if (!range) {
        range = { from: scorer.rows, to: scorer.rows };
        ranges.set(name, range);
      }
      // The window's newest frame, for the training history (a reference: copied if kept).
      if (training) framesOf(name).set(scorer.rows, frame.values);
      await scorer.add({
        streamId: frame.streamId,
        timestamp: frame.timestamp,
        // The replica's epoch clock, on this process's performance clock.
        receivedAt: frame.receivedAt - performance.timeOrigin,
        // The replica's `enqueue frame` span: the batch links to it, an alert continues it.
        span: frame.span,
      });
      range.to = scorer.rows;
      if (scorer.failure) throw scorer.failure;
    }
    return last;
  }

  /**
   * Scores one round across the partitions (a batch per model met), makes its alerts durable,
   * then commits.
   */
  async function scoreBatch(p: Parts): Promise<void> {
    const round: Round = new Map();
    const taken = new Map<Partition, { ranges: Ranges; last: BusFrame }>();
    const order = [...partitions.values()];
    rotation = (rotation + 1) % Math.max(1, order.length);
    for (let k = 0; k < order.length; k++) {
      const part = order[(k + rotation) % order.length];
      const ranges: Ranges = new Map();
      const last = await drain(part, round, ranges);
      if (last) taken.set(part, { ranges, last });
    }
    // Fencing: a partition whose lease ran out (say, this process was stopped) is not scored by
    // us any more; its rows are dropped and the new owner scores them.
    const touched: Partition[] = [];
    for (const [part, { ranges }] of taken) {
      if (!part.closed && p.leases.owns(part.id)) {
        touched.push(part);
        continue;
      }
      for (const r of ranges.values()) counters.fenced_rows += r.to - r.from;
      if (!part.closed) {
        const { committed, replay } = part;
        fenced.set(part.id, { committed, replay, stopped: close(part.id) });
      }
    }
    // Only replayed, late, skipped or stopped frames: no batch, their partitions still commit.
    for (const [name, served] of round) {
      const scorer = served.scorer;
      const batch = await scorer.finish();
      // As the single process's batcher: its own trace, linked to the span of each of its frames.
      const links: Link[] = [];
      for (const span of scorer.spans()) if (span) links.push({ context: span });
      const batchSpan =
        batch.size === 0
          ? undefined
          : tracer.startSpan("inference batch", {
              startTime: scorer.firstRunAt || undefined,
              links,
              attributes: {
                "engine.batch.size": batch.size,
                "engine.window.size": served.meta.window_size,
                "engine.model.features": served.meta.n_features,
                "engine.execution_provider": scorer.model.provider,
                "engine.model.version": served.version,
                "engine.inference.ms": batch.inferenceMs,
              },
            });
      const latencies = new Float64Array(batch.size);
      let alerts = 0;
      /** Rows `from .. to` of `m`'s partition into its alert path and the training history. */
      const scoreRows = (m: ModelPart, from: number, to: number) => {
        if (to === from) return;
        const view = scorer.view(from, to, batch.completedAt);
        const result = m.pipeline.scored(view);
        alerts += result.alerts;
        // Incident membership is the partition's alert path's own: restored from the incident
        // KV at a takeover, so the history names the incidents the previous owner alerted.
        training?.scored(
          view,
          { model: { metadata: served.meta }, history: framesOf(name).over(view, from) },
          result.incidents,
        );
      };
      // Inside the batch span, so the alert path's and the batch's log lines carry its trace.
      const inBatch = batchSpan ? trace.setSpan(context.active(), batchSpan) : context.active();
      context.with(inBatch, () => {
        for (const part of touched) {
          const m = part.models.get(name);
          const range = taken.get(part)?.ranges.get(name);
          if (!m || ((!range || range.to === range.from) && m.stops.length === 0)) continue;
          // A stream forgotten from here on was forgotten at a window up to this sequence.
          m.pipeline.reached((taken.get(part) as { last: BusFrame }).last.seq);
          const to = range?.to ?? 0;
          let from = range?.from ?? 0;
          for (let i = from; i < to; i++) {
            // Reception is the replica's clock, completion ours: a replica whose clock is ahead
            // would give a negative latency, so it counts as 0 and the skew is told once a minute.
            const measured = batch.completedAt - batch.receivedAt[i];
            if (measured < 0) clockSkewed(measured);
            const latencyMs = Math.max(0, measured);
            latencies[i] = latencyMs;
            stats.frameScored(latencyMs, name);
            metrics.frameLatency.record(latencyMs);
          }
          // In frame order, as the single process's batcher tells its alert path of a stop.
          for (const stop of m.stops) {
            scoreRows(m, from, Math.max(from, stop.row));
            from = Math.max(from, stop.row);
            m.pipeline.machineStopped(stop.streamId);
            training?.machineStopped(name, stop.streamId);
          }
          m.stops.length = 0;
          scoreRows(m, from, to);
        }
      });
      batchFrames.get(name)?.clear();
      if (!batchSpan) continue;
      stats.batchScored(batch.size, batch.inferenceMs, name);
      summary.batch(latencies, batch.inferenceMs, alerts);
      metrics.batchSize.record(batch.size);
      metrics.inferenceDuration.record(batch.inferenceMs);
      // Built only when it is logged: at the default level a batch allocates no log line.
      if (log.level >= LOG_LEVELS.debug) {
        context.with(inBatch, () =>
          log.debug("batch scored", {
            worker: workerId,
            model: name,
            model_version: served.version,
            batch_size: batch.size,
            inference_ms: Math.round(batch.inferenceMs * 1000) / 1000,
            frames: [...taken].flatMap(([part, { ranges }]) => {
              const range = ranges.get(name) ?? { from: 0, to: 0 };
              return Array.from({ length: range.to - range.from }, (_, j) => ({
                stream_id: batch.streamIds[range.from + j],
                timestamp: new Date(batch.timestamps[range.from + j]).toISOString(),
                partition: part.id,
                latency_ms: Math.round(latencies[range.from + j] * 1000) / 1000,
              }));
            }),
            alerts,
          }),
        );
      }
      batchSpan.end();
    }
    // Offsets move only once the alerts (and incident state) are durable.
    await Promise.all(touched.map(flushed));
    for (const part of touched) {
      const { last } = taken.get(part) as { last: BusFrame };
      part.done = { seq: last.seq, replay: replayPoint(part), lag: lagOf(part.id) ?? 0 };
    }
    await Promise.all(touched.map((part) => commit(part, false)));
  }

  async function runLoop(p: Parts): Promise<void> {
    while (!stop.signal.aborted) {
      if (fenced.size > 0) await reopenFenced(p);
      if (buffered() === 0) {
        // Idle: commit everything durable so a takeover re-reads as little as possible.
        busy = true;
        await Promise.all([...partitions.values()].map((part) => commit(part, true))).catch(
          (error) => log.warn("commit failed", error as Error),
        );
        // A hand-over that came during the commit waits for this: no batch may follow to wake it.
        settle();
        if (buffered() > 0) continue;
        if (fenced.size > 0) {
          // A fenced partition's lease is renewed or lost within a lease period: look again soon.
          await delay(50, stop.signal);
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      if (p.alerts.full) {
        // The outbox is at OUTBOX_MAX_ALERTS / OUTBOX_MAX_BYTES (the backend down): no frame is
        // taken until it drains. The frames wait in JetStream; the lag this leaves makes the
        // ingest replicas answer 429 past NATS_MAX_LAG, as the single process answers 503.
        if (!outboxFullSince) {
          outboxFullSince = Date.now();
          log.warn("alert outbox full: frames wait in the stream until it drains", {
            outbox_alerts: p.alerts.backlog,
          });
        }
        // Nothing is committed meanwhile: the lag is written as it grows, once a second.
        if (performance.now() - lagReportedAt >= LAG_REPORT_MS) {
          lagReportedAt = performance.now();
          for (const id of partitions.keys()) {
            const lag = lagOf(id);
            if (lag !== undefined) await p.leases.reportLag(id, lag).catch(() => false);
          }
        }
        await delay(200, stop.signal).catch(() => {});
        continue;
      }
      if (outboxFullSince) {
        log.info("alert outbox drained: taking frames again", {
          waited_ms: Date.now() - outboxFullSince,
        });
        outboxFullSince = 0;
      }
      busy = true;
      try {
        // Between two batches: versions no frame has named for two lease periods are closed.
        await p.models.sweep(2 * config.NATS_LEASE_MS);
        await scoreBatch(p);
      } catch (error) {
        log.error("worker batch failed; its partitions are read again", error as Error);
        // Nothing of the batch was committed: re-read the partitions from their committed
        // position so no frame is skipped, as a fenced partition is (reopened while the lease
        // holds, tried again until it opens).
        for (const part of [...partitions.values()]) {
          const { committed, replay } = part;
          fenced.set(part.id, { committed, replay, stopped: close(part.id) });
        }
        await delay(100, stop.signal);
      } finally {
        settle();
      }
    }
  }

  /**
   * The shared registry's active version of every routed model, loaded (a model the registry has
   * none of is seeded from MODEL_DIR), each model's pointer followed.
   */
  async function serveModels(bus: NatsBus): Promise<Pick<Parts, "registry" | "models">> {
    let registry: NatsModelRegistry;
    let cache: VersionCache;
    try {
      registry = await NatsModelRegistry.open(bus.nc, config.NATS_STREAM);
      cache = new VersionCache(join(config.DATA_DIR, "models"), registry);
      await cache.clean();
    } catch (error) {
      throw new ModelLoadError(`cannot open the model registry: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const models = new ServedModels({
      config,
      log,
      registry,
      cache,
      workerId,
      signal: stop.signal,
    });
    await models.start(new StreamRoutes(config.MODEL_ROUTES, config.DEFAULT_MODEL_NAME).models);
    return { registry, models };
  }

  function start(): Promise<void> {
    return lifecycle.starting(async () => {
      // The copies on disk first (no network): decisions hold from the first frame even while
      // the backend is down; pulls go on in the background.
      await decisions?.start();
      // One outbox per worker host: replicas sharing a volume (compose) keep separate logs, and a
      // restarted container (same hostname) redelivers what it left behind.
      const outbox = await Outbox.open({ dir: join(config.DATA_DIR, `worker-${safeHost}`) });
      const alerts = alertDispatcherFor(config, outbox, { log, metrics, fetch: options.fetch });
      alerts.start();
      const bus = await connectWithRetry(config, log, `engine-worker-${workerId}`, stop.signal);
      const { registry, models } = await serveModels(bus).catch(async (error) => {
        await Promise.allSettled([bus.close(), outbox.close()]);
        throw error;
      });
      const model = models.default.active.model;
      const openIncidentKv = () =>
        kvBucket(bus.nc, `${config.NATS_STREAM}_incidents`, { history: 1 });
      const incidentKv = config.ALERT_MODE === "incident" ? await openIncidentKv() : undefined;
      // A server restarted without its store lost the stream and buckets: made again, as here.
      const repair = new BusRepair({
        async create() {
          await bus.repair();
          if (incidentKv) await openIncidentKv();
        },
        log,
      });
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
          if (part) await flushed(part);
          if (part) await commit(part, true);
          // For its next owner: what these windows hold, and what they were told at takeover.
          if (part) await part.seen.save(lanesOf(part));
          if (part) part.closed = true;
          counters.released++;
          fenced.delete(id);
          await close(id);
        },
        onLost(id) {
          counters.lost++;
          fenced.delete(id);
          void close(id);
        },
        lagOf,
        onError: (error) => repair.noticed(error),
      });
      const seenBoard = new SeenStreamsBoard({
        nc: bus.nc,
        prefix: config.NATS_STREAM,
        partitions: config.NATS_PARTITIONS,
        log,
      });
      // Posted for the ingest replicas, whose `/stats` the console reads.
      const machineOffBoard = new MachineOffBoard({
        nc: bus.nc,
        prefix: config.NATS_STREAM,
        ttlMs: machineOffTtlMs(config.NATS_LEASE_MS),
        log,
      });
      parts = {
        get model() {
          return models.default.active.model;
        },
        models,
        registry,
        outbox,
        alerts,
        bus,
        leases,
        incidentKv,
        machineOffBoard,
        seenBoard,
        evidence: new WorkerEvidence(config, models.all.length),
        posting: machineOffBoard.post(
          workerId,
          () => ({ machine_off: machineOff(), partitions: ownedPartitions() }),
          stop.signal,
        ),
        scoredFrames: new ScoredFrames({ bus, log, onError: (error) => repair.noticed(error) }),
        repair,
      };
      // Answering before the first heartbeat: a replica that sees this worker live hears from it.
      new ScoringRollCall({ nc: bus.nc, prefix: config.NATS_STREAM, log }).answer(
        workerId,
        scoring,
        stop.signal,
      );
      metrics.queueDepth.addCallback(observeQueue);
      metrics.outboxDepth.addCallback(observeOutbox);
      loop = runLoop(parts);
      seenKept = keepSeen();
      leases.start();
      summary.start();
      retraining = sharedRetrainSchedulerFor(config, {
        log,
        models: () => models.all.map((m) => m.name),
        nc: bus.nc,
        registry,
        worker: workerId,
      });
      retraining?.start();
      lifecycle.ready();
      log.info("inference worker ready", {
        worker: workerId,
        model: model.metadata.name,
        version: model.metadata.version,
        ...(models.all.length > 1
          ? {
              models: models.all.map((m) => ({
                model: m.name,
                version: m.active.version,
                n_features: m.active.meta.n_features,
              })),
            }
          : {}),
        execution_provider: model.provider,
        stream: config.NATS_STREAM,
        partitions: config.NATS_PARTITIONS,
        outbox_kept: outbox.size,
      });
    });
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    const deadline = lifecycle.stopping(timeoutMs);
    // A retraining run in progress is stopped (its child killed, its run recorded, its lease
    // released); with NATS unreachable those writes wait no longer than a quarter of the
    // deadline, and the lease ages out on its own.
    await Promise.race([retraining?.stop(), delay(Math.max(1, timeoutMs / 4), deadline)]);
    // Pulls stop; the answers stay those of the last good copy for the batches still scored.
    await decisions?.stop();
    // Hand every partition over at its committed position, then stop scoring. With NATS
    // unreachable the hand-over cannot be written: the leases then expire on their own.
    const handedOver = parts?.leases.stop().catch((e) => log.warn("hand-over failed", e as Error));
    await Promise.race([handedOver, delay(Math.max(1, timeoutMs / 2), deadline)]);
    stop.abort();
    notify();
    await loop;
    // A write of the streams seen in flight ends before the connection closes, or is left.
    await Promise.race([seenKept, delay(Math.max(1, timeoutMs / 4), deadline)]);
    // Its partitions are handed over (or expire): its streams leave the replicas' list now, or,
    // with NATS unreachable, when its post ages out.
    const left = parts?.posting.then(() => parts?.machineOffBoard.leave(workerId));
    await Promise.race([left, delay(Math.max(1, timeoutMs / 4), deadline)]);
    summary.stop();
    metrics.queueDepth.removeCallback(observeQueue);
    metrics.outboxDepth.removeCallback(observeOutbox);
    await training?.close();
    await Promise.all([...partitions.keys()].map(close));
    await parts?.alerts.drain(deadline);
    parts?.scoredFrames.close();
    parts?.repair.close();
    await parts?.registry.kv.delete(loadedKey(workerId)).catch(() => {});
    await Promise.allSettled([parts?.outbox.close(), parts?.models.close(), parts?.bus.close()]);
    log.info("inference worker stopped", {
      worker: workerId,
      outbox_kept: parts?.outbox.size ?? 0,
    });
  }

  const app = createRoleApp({
    log,
    middleware: options.middleware,
    loopbackOnly: servesLoopbackOnly(config),
    readiness: () => {
      const body = readinessBody(lifecycle, {
        meta: parts?.model.metadata,
        provider: parts?.model.provider ?? null,
        gpuAvailable: hasGpu(),
        queue: { depth: buffered(), capacity: capacity() },
      });
      return decisions ? { ...body, decisions: decisionsReadiness(decisions.report()) } : body;
    },
    stats: () => {
      const { models: perModel, ...figures } = snapshot(sampleResources().rss_bytes);
      return {
        ...figures,
        // Stopped machines of the partitions held (a model's running condition fails): not
        // anomalies, listed apart, as the single process lists them.
        machine_off: machineOff(),
        // Streams gone silent in the partitions held, as the single process lists its own.
        silent: mergeSilent([ownedPartitions()]),
        role: "worker",
        worker: {
          id: workerId,
          partitions: [...partitions.keys()].sort((a, b) => a - b),
          live_workers: parts?.leases.liveWorkers ?? 0,
          read_ahead_bytes: budget.used,
          ...counters,
          // Scored frames purged from the stream (below the committed replay points).
          purged: parts?.scoredFrames.purged ?? 0,
          // The stream or a bucket found missing on the server, being made again.
          ...(parts ? { bus_repair: parts.repair.report() } : {}),
        },
        // The default model's, as before; `models` lists every model served.
        model: parts
          ? {
              name: config.DEFAULT_MODEL_NAME,
              active_version: parts.models.default.active.version,
              loaded_versions: parts.models.default.versions,
            }
          : null,
        // Each model served: its versions and its own counters (the figures above sum them).
        models:
          parts?.models.all.map((m) => ({
            ...(perModel?.find((c) => c.name === m.name) ?? unscoredModel(m.name)),
            name: m.name,
            active_version: m.active.version,
            loaded_versions: m.versions,
            // This worker's scheduled runs (RETRAIN_EVERY_H); GET /models on a replica shows the
            // deployment's, from the shared record.
            ...(retraining ? { retrain: retraining.status(m.name) } : {}),
          })) ?? [],
      };
    },
    resetStats: () => stats.reset(),
    adminToken: config.ADMIN_TOKEN,
  });
  return { app, stats, start, shutdown };
}
