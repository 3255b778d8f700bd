// The single-process engine's lifecycle and the parts that exist once it is ready.
import type { EngineReady } from "../contracts/health.ts";
import type { AlertDispatcher } from "./alert/alert_dispatcher.ts";
import type { AlertPipeline } from "./alert/alert_pipeline.ts";
import type { Outbox } from "./alert/outbox.ts";
import type { Batcher } from "./batch/batcher.ts";
import {
  type DecisionsReadiness,
  type DecisionsReport,
  decisionsReadiness,
} from "./decisions/decisions_client.ts";
import type { HistoryStore } from "./evidence/history_store.ts";
import type { ScoringModel } from "./infer/load_model.ts";
import type { Ingestor } from "./ingest/mod.ts";
import type { FrameQueue } from "./queue/frame_queue.ts";
import { Lifecycle, readinessBody } from "./roles/role_shell.ts";
import type { MachineStates } from "./window/machine_states.ts";
import type { SeenStreams } from "./window/seen_streams.ts";
import type { StreamWindows } from "./window/stream_windows.ts";

/** One served model's path from queue to alerts: the streams `MODEL_ROUTES` sends to it. */
export interface ModelLane {
  model: ScoringModel;
  queue: FrameQueue;
  windows: StreamWindows;
  batcher: Batcher;
  pipeline: AlertPipeline;
  /** The accepted frames kept for incident history (EVIDENCE_HISTORY_FRAMES). */
  history: HistoryStore;
  /** Its streams whose machine is stopped (the model's running condition). */
  machine: MachineStates;
  /** The globs that reach it (`*` for the default model's unmatched streams). */
  routes: string[];
}

/**
 * Everything between a request and an alert, built once the models are loaded: a lane per model
 * (the first is `DEFAULT_MODEL_NAME`'s, whose parts are also the pipeline's own fields) sharing
 * the intake, the alert dispatcher and its outbox.
 */
export interface EnginePipeline extends ModelLane {
  lanes: ModelLane[];
  ingestor: Ingestor;
  alerts: AlertDispatcher;
  outbox: Outbox;
  /** Every stream seen, kept across restarts: its silent ones are listed when no lane holds them. */
  seen?: SeenStreams;
}

export type EngineStatus = EngineReady["status"];

/** The engine's {@link Lifecycle}, with its pipeline once ready (read by the HTTP app). */
export class EngineState extends Lifecycle {
  pipeline: EnginePipeline | undefined;
  readonly gpu: { available: boolean };
  /**
   * Set by the shutdown once it stops scoring: a frame whose upload ends after that is refused
   * `503 shutting_down` (retried elsewhere or later), not answered 202 and left unscored.
   */
  intakeClosed = false;
  /** Requests in flight by the intake they took (an activation with other features replaces it). */
  readonly #inFlight = new Map<Ingestor, number>();
  /** Woken when an intake's last request ends. */
  readonly #idle = new Set<() => void>();
  /**
   * Where the copy of operators' decisions stands, when the engine pulls one: readiness says
   * whether it is stale, and stays ready (scoring never waits on the backend).
   */
  decisions: (() => DecisionsReport) | undefined;

  constructor(gpuAvailable: boolean) {
    super();
    this.gpu = { available: gpuAvailable };
  }

  override ready(pipeline?: EnginePipeline): void {
    this.pipeline = pipeline ?? this.pipeline;
    super.ready();
  }

  /** Replaces the parts (a model activation) without touching the lifecycle status. */
  use(pipeline: EnginePipeline): void {
    this.pipeline = pipeline;
  }

  /** Replaces lane `index`'s parts (and the intake, when given), keeping the rest. */
  useLane(index: number, lane: ModelLane, ingestor?: Ingestor): void {
    const p = this.pipeline;
    if (!p) return;
    const lanes = p.lanes.slice();
    lanes[index] = lane;
    this.pipeline = { ...p, ...lanes[0], lanes, ingestor: ingestor ?? p.ingestor };
  }

  /**
   * Takes the pipeline for one request; the request hands it back with {@link leave} when it
   * ends, however it ends. Only call once ready.
   */
  enter(): EnginePipeline {
    const p = this.pipeline as EnginePipeline;
    this.#inFlight.set(p.ingestor, (this.#inFlight.get(p.ingestor) ?? 0) + 1);
    return p;
  }

  /** Ends a request that took `p` with {@link enter}. */
  leave(p: EnginePipeline): void {
    const n = (this.#inFlight.get(p.ingestor) ?? 1) - 1;
    if (n > 0) {
      this.#inFlight.set(p.ingestor, n);
      return;
    }
    this.#inFlight.delete(p.ingestor);
    for (const wake of this.#idle) wake();
  }

  /** Requests in flight that took a pipeline with intake `ingestor`. */
  inFlight(ingestor: Ingestor): number {
    return this.#inFlight.get(ingestor) ?? 0;
  }

  /**
   * Resolves once no request holds a pipeline with intake `ingestor` (true), or when `signal`
   * aborts first (false). An activation waits on it before it closes a replaced intake or lets
   * its old queue go: an upload still in flight decodes with that intake and reserves its slot
   * in that queue only once decoded (several models), so it must end first.
   */
  async settled(ingestor: Ingestor, signal: AbortSignal): Promise<boolean> {
    while (this.#inFlight.has(ingestor)) {
      if (signal.aborted) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#idle.delete(wake);
          signal.removeEventListener("abort", wake);
          resolve();
        };
        this.#idle.add(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
    return true;
  }

  /** The `/health/ready` body (contracts/health.ts), with `decisions` while the client is on. */
  readiness(): EngineReady & { decisions?: DecisionsReadiness } {
    const p = this.pipeline;
    const body = readinessBody(this, {
      meta: p?.model.metadata,
      provider: p?.model.provider ?? null,
      gpuAvailable: this.gpu.available,
      queue: p
        ? {
            depth: p.lanes.reduce((n, l) => n + l.queue.used, 0),
            capacity: p.lanes.reduce((n, l) => n + l.queue.capacity, 0),
          }
        : undefined,
    });
    return this.decisions ? { ...body, decisions: decisionsReadiness(this.decisions()) } : body;
  }
}
