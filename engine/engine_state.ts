// The engine's lifecycle (loading → ready → draining, or failed) and the parts that exist once ready.
import type { EngineReady } from "../contracts/health.ts";
import type { ModelMetadata } from "../contracts/model.ts";
import type { AlertDispatcher } from "./alert/alert_dispatcher.ts";
import type { AlertPipeline } from "./alert/alert_pipeline.ts";
import type { Outbox } from "./alert/outbox.ts";
import type { Batcher } from "./batch/batcher.ts";
import type { ScoringModel } from "./infer/load_model.ts";
import type { Ingestor } from "./ingest/mod.ts";
import type { FrameQueue } from "./queue/frame_queue.ts";
import type { StreamWindows } from "./window/stream_windows.ts";

/** The model part of a `/health/ready` body: which model serves, or null while none is loaded. */
export function readyModel(meta: ModelMetadata | undefined): EngineReady["model"] {
  return meta
    ? {
        name: meta.name,
        version: meta.version,
        n_features: meta.n_features,
        window_size: meta.window_size,
      }
    : null;
}

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

/** Mutable lifecycle state read by the HTTP app on every request (a few field reads, no I/O). */
export class EngineState {
  status: EngineStatus = "loading";
  pipeline: EnginePipeline | undefined;
  error: string | undefined;
  readonly gpu: { available: boolean };

  constructor(gpuAvailable: boolean) {
    this.gpu = { available: gpuAvailable };
  }

  ready(pipeline: EnginePipeline): void {
    this.pipeline = pipeline;
    this.status = "ready";
  }

  fail(error: Error): void {
    this.status = "failed";
    this.error = error.message;
  }

  drain(): void {
    if (this.status === "ready" || this.status === "loading") this.status = "draining";
  }

  /** The `/health/ready` body (contracts/health.ts). */
  readiness(): EngineReady {
    const p = this.pipeline;
    const meta = p?.model.metadata;
    const body: EngineReady = {
      status: this.status,
      model: readyModel(meta),
      execution_provider: p?.model.provider ?? null,
      gpu: { ...this.gpu, available: this.gpu.available || p?.model.provider === "cuda" },
    };
    if (p) body.queue = { depth: p.queue.used, capacity: p.queue.capacity };
    if (this.error) body.error = this.error;
    return body;
  }
}
