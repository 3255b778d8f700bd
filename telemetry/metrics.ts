// The names of every OpenTelemetry instrument, in one place: dashboards and tests rely on them.
import { metrics } from "@opentelemetry/api";

/** Engine instruments. Created from the global meter provider; no-ops when telemetry is off. */
export function createEngineMetrics(meter = metrics.getMeter("engine")) {
  return {
    /** Reception of a frame → its window scored (ms). */
    frameLatency: meter.createHistogram("engine.frame.latency", {
      unit: "ms",
      description: "Time from frame reception to inference complete",
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000] },
    }),
    framesAccepted: meter.createCounter("engine.frames.accepted", {
      description: "Frames accepted (202)",
    }),
    framesRejected: meter.createCounter("engine.frames.rejected", {
      description: "Frames rejected, by `reason` (the error code)",
    }),
    queueDepth: meter.createObservableGauge("engine.queue.depth", {
      description: "Frames waiting in the queue",
    }),
    batchSize: meter.createHistogram("engine.batch.size", {
      description: "Windows per inference batch",
      advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256] },
    }),
    inferenceDuration: meter.createHistogram("engine.inference.duration", {
      unit: "ms",
      description: "ONNX Runtime time per batch",
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500] },
    }),
    alertsSent: meter.createCounter("engine.alerts.sent", {
      description: "Alerts delivered (2xx)",
    }),
    alertsFailed: meter.createCounter("engine.alerts.failed", {
      description:
        "Alerts whose first round of delivery attempts was exhausted (kept in the outbox, tried again in rounds)",
    }),
    alertsRejected: meter.createCounter("engine.alerts.rejected", {
      description:
        "Alerts the backend refused with a status that is not retried (4xx), by `status`; kept in the outbox until restart",
    }),
    alertsRetried: meter.createCounter("engine.alerts.retried", {
      description: "Alert delivery retries",
    }),
    outboxDepth: meter.createObservableGauge("engine.outbox.depth", {
      description: "Undelivered alerts kept",
    }),
  };
}

/** Backend instruments. */
export function createBackendMetrics(meter = metrics.getMeter("backend")) {
  return {
    alertsStored: meter.createCounter("backend.alerts.stored", {
      description: "New alerts stored",
    }),
    alertsDuplicate: meter.createCounter("backend.alerts.duplicate", {
      description: "Alert deliveries already stored (idempotent repeats)",
    }),
    alertsRejected: meter.createCounter("backend.alerts.rejected", {
      description: "Alerts rejected, by `reason`",
    }),
    framesSent: meter.createCounter("backend.simulator.frames", {
      description: "Frames the simulator sent, by engine `status`",
    }),
  };
}

export type EngineMetrics = ReturnType<typeof createEngineMetrics>;
export type BackendMetrics = ReturnType<typeof createBackendMetrics>;
