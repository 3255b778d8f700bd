// Starts the OpenTelemetry SDK of the running runtime at a service's entry point (NodeSDK on Node).
import process from "node:process";
import { metrics } from "@opentelemetry/api";
import { createLogger } from "./logger.ts";
import { registerResourceMetrics } from "./resources.ts";

type Env = Record<string, string | undefined>;

/**
 * Longest wait at shutdown for the last spans and metrics to reach the collector (ms): an
 * exporter retries a collector that refuses connections for about 8 s, which would overrun a
 * service's own shutdown deadline.
 */
export const TELEMETRY_FLUSH_TIMEOUT_MS = 2000;

/**
 * Flushes and stops whatever {@link startTelemetry} started; safe to call more than once. Waits
 * until `deadline` aborts at most (default: {@link TELEMETRY_FLUSH_TIMEOUT_MS}), then warns that
 * telemetry was not flushed and resolves; the SDK's shutdown goes on in the background.
 */
export type TelemetryShutdown = (deadline?: AbortSignal) => Promise<void>;

export interface StartTelemetryOptions {
  /**
   * Where a failed or late flush, or an unnamed service under Deno, is said (default: a JSON
   * line from `createLogger`).
   */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

/** What {@link telemetryPlan} decided from the environment. */
export interface TelemetryPlan {
  /** `node-sdk`: start NodeSDK; `deno`: Deno's built-in SDK owns it; `off`: nothing to start. */
  mode: "node-sdk" | "deno" | "off";
  /** Why, in words, for the start-up log. */
  reason: string;
  serviceName: string;
  traces: boolean;
  metrics: boolean;
}

/** What Deno's built-in OpenTelemetry calls a service started without `OTEL_SERVICE_NAME`. */
const DENO_UNNAMED_SERVICE = "unknown_service:deno";

const set = (value: string | undefined) => value !== undefined && value.trim() !== "";
const exporterChosen = (value: string | undefined) =>
  set(value) && !value!.split(",").every((name) => name.trim() === "none");

/**
 * Decides what to start from the standard `OTEL_*` variables, without side effects.
 * Telemetry is on only when somewhere to send it is configured: an OTLP endpoint, or an
 * explicit `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` (e.g. `console`). Without one, no
 * SDK is started and every `@opentelemetry/api` call stays a no-op, which is what
 * "costs next to nothing" means.
 */
export function telemetryPlan(service: string, env: Env, isDeno: boolean): TelemetryPlan {
  const serviceName = set(env.OTEL_SERVICE_NAME) ? env.OTEL_SERVICE_NAME!.trim() : service;
  const off = (mode: "deno" | "off", reason: string): TelemetryPlan => ({
    mode,
    reason,
    serviceName,
    traces: false,
    metrics: false,
  });
  // Deno registers its own providers into the API global when OTEL_DENO=true; a second SDK
  // would fight over the globals. It takes the service name only from OTEL_SERVICE_NAME as it
  // was when Deno started, so `service` cannot name it.
  if (isDeno) {
    const named = set(env.OTEL_SERVICE_NAME);
    return {
      ...off("deno", "Deno's built-in OpenTelemetry (OTEL_DENO=true) is used"),
      serviceName: named ? serviceName : DENO_UNNAMED_SERVICE,
    };
  }
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") {
    return off("off", "OTEL_SDK_DISABLED=true");
  }
  const anyEndpoint = set(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const traces =
    env.OTEL_TRACES_EXPORTER === undefined
      ? anyEndpoint || set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
      : exporterChosen(env.OTEL_TRACES_EXPORTER);
  const metrics =
    env.OTEL_METRICS_EXPORTER === undefined
      ? anyEndpoint || set(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)
      : exporterChosen(env.OTEL_METRICS_EXPORTER);
  if (!traces && !metrics) return off("off", "no OTEL_EXPORTER_OTLP_ENDPOINT configured");
  return { mode: "node-sdk", reason: "NodeSDK", serviceName, traces, metrics };
}

/**
 * Starts telemetry for `service` (used as `service.name` unless `OTEL_SERVICE_NAME` is set) and
 * returns an idempotent shutdown that flushes pending spans and metrics. Call it first in an
 * entry point, before creating meters: the metrics API, unlike the trace API, does not hand
 * out proxies, so a meter created earlier stays a no-op.
 *
 * On Node this starts NodeSDK, which reads the standard variables itself (`OTEL_EXPORTER_OTLP_*`
 * including `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`, `OTEL_TRACES_SAMPLER`,
 * `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_BSP_*`, `OTEL_PROPAGATORS`, ...). On Deno it starts
 * nothing: run with `OTEL_DENO=true` and Deno's built-in SDK serves the same API. Either way,
 * when metrics are exported, the process CPU/memory and GPU gauges of `resources.ts` are
 * registered here, so entry points need not.
 *
 * @example
 * const stopTelemetry = await startTelemetry("engine");
 * // ... serve ...
 * await stopTelemetry(); // or stopTelemetry(AbortSignal.timeout(msLeft))
 */
export async function startTelemetry(
  service: string,
  options: StartTelemetryOptions = {},
): Promise<TelemetryShutdown> {
  const isDeno = "Deno" in globalThis;
  const plan = telemetryPlan(service, process.env, isDeno);
  const warn =
    options.warn ??
    ((message: string, fields: Record<string, unknown>) =>
      createLogger({ service }).warn(message, fields));
  if (plan.mode === "deno" && /^(true|1)$/i.test(process.env.OTEL_DENO ?? "")) {
    if (plan.serviceName === DENO_UNNAMED_SERVICE) {
      const fix = `OTEL_SERVICE_NAME=${service}`;
      warn(`Deno exports this service as ${DENO_UNNAMED_SERVICE}; start it with ${fix}`, {});
    }
    registerResourceMetrics(metrics.getMeter("resources"));
  }
  if (plan.mode !== "node-sdk") return async function noTelemetryToStop() {};

  // Imported only here so that Deno, and Node with telemetry off, never load the SDK.
  const { NodeSDK } = await import("@opentelemetry/sdk-node");
  const sdk = new NodeSDK({
    serviceName: plan.serviceName,
    // An empty list keeps NodeSDK from defaulting an exporter to localhost:4318 for the signal
    // nobody configured (e.g. only OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set).
    ...(plan.traces ? {} : { spanProcessors: [] }),
    ...(plan.metrics ? {} : { metricReaders: [] }),
    // Logs stay JSON lines on stdout (see logger.ts); no OTel log pipeline is started.
    logRecordProcessors: [],
  });
  sdk.start();
  // Process CPU/memory and GPU gauges belong to the process, not to a service's code.
  if (plan.metrics) registerResourceMetrics(metrics.getMeter("resources"));

  let stopped: Promise<void> | undefined;
  return async function stopTelemetry(deadline = AbortSignal.timeout(TELEMETRY_FLUSH_TIMEOUT_MS)) {
    stopped ??= sdk.shutdown().catch((error: unknown) => {
      // A collector that went away must not turn a clean exit into a crash.
      warn("telemetry shutdown failed", { error: (error as Error)?.message ?? String(error) });
    });
    const late = await Promise.race([
      stopped.then(() => false),
      whenAborted(deadline).then(() => true),
    ]);
    if (late) {
      warn(
        "telemetry not flushed before the shutdown deadline; its last spans and metrics are lost",
        {},
      );
    }
  };
}

/** Resolves once `signal` aborts (at once if it has). */
function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
