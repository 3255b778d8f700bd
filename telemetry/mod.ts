// Runtime-neutral telemetry for both services: logger, instrument names, tracer access.
import { trace } from "@opentelemetry/api";

export * from "./logger.ts";
export * from "./metrics.ts";

/** The tracer of a service; spans are no-ops until a runtime's SDK registers a provider. */
export function getTracer(service: string) {
  return trace.getTracer(service);
}
