// The single-process engine's lifecycle and the parts that exist once it is ready.
import type { EngineReady } from "../contracts/health.ts";
import type { AlertDispatcher } from "./alert/alert_dispatcher.ts";
import type { AlertPipeline } from "./alert/alert_pipeline.ts";
import type { Outbox } from "./alert/outbox.ts";
import type { Batcher } from "./batch/batcher.ts";
import type { ScoringModel } from "./infer/load_model.ts";
import type { Ingestor } from "./ingest/mod.ts";
import type { FrameQueue } from "./queue/frame_queue.ts";
import { Lifecycle, readinessBody } from "./roles/role_shell.ts";
import type { StreamWindows } from "./window/stream_windows.ts";

/** Everything between a request and an alert, built once the model is loaded. */
export interface EnginePipeline {
  model: ScoringModel;
  queue: FrameQueue;
  windows: StreamWindows;
  ingestor: Ingestor;
  batcher: Batcher;
  alerts: AlertDispatcher;
  outbox: Outbox;
  pipeline: AlertPipeline;
}

export type EngineStatus = EngineReady["status"];

/** The engine's {@link Lifecycle}, with its pipeline once ready (read by the HTTP app). */
export class EngineState extends Lifecycle {
  pipeline: EnginePipeline | undefined;
  readonly gpu: { available: boolean };

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

  /** The `/health/ready` body (contracts/health.ts). */
  readiness(): EngineReady {
    const p = this.pipeline;
    return readinessBody(this, {
      meta: p?.model.metadata,
      provider: p?.model.provider ?? null,
      gpuAvailable: this.gpu.available,
      queue: p ? { depth: p.queue.used, capacity: p.queue.capacity } : undefined,
    });
  }
}
