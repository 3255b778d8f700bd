// Runtime-neutral telemetry for both services: SDK start-up, HTTP spans, logger, instruments, resources.
import { trace } from "@opentelemetry/api";

export * from "./hono.ts";
export * from "./logger.ts";
export * from "./metrics.ts";
export {
  type GpuUsage,
  hasGpu,
  type ResourceSample,
  readGpu,
  registerResourceMetrics,
  sampleResources,
} from "./resources.ts";
export * from "./setup.ts";

/** The tracer of a service; spans are no-ops until a runtime's SDK registers a provider. */
export function getTracer(service: string) {
  return trace.getTracer(service);
}
