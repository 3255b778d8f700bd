// Starts the OpenTelemetry SDK of the running runtime at a service's entry point (NodeSDK on Node).
import { hostname } from "node:os";
import process from "node:process";
import {
  context,
  type DiagLogger,
  DiagLogLevel,
  diag,
  metrics,
  ROOT_CONTEXT,
} from "@opentelemetry/api";
import { createLogger, LOG_LEVELS, type Logger, type LogLevelName } from "./logger.ts";
import { registerResourceMetrics } from "./resources.ts";

type Env = Record<string, string | undefined>;

/**
 * Longest wait at shutdown for the last spans and metrics to reach the collector (ms): an
 * exporter retries a collector that refuses connections for about 8 s, which would overrun a
 * service's own shutdown deadline.
 */
export const TELEMETRY_FLUSH_TIMEOUT_MS = 2000;

/**
 * Most links one span keeps. The `inference batch` span links every frame of its batch, and
 * `INFERENCE_BATCH_SIZE` goes up to 4096 (contracts/config.ts); the SDK's default of 128 would
 * silently drop the rest. `OTEL_SPAN_LINK_COUNT_LIMIT` still overrides it.
 */
export const SPAN_LINK_COUNT_LIMIT = 4096;

/** Shortest time between two identical SDK diagnostics in the log (ms). */
export const DIAG_REPEAT_MS = 60_000;

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
  /**
   * Where the SDK's own diagnostics go under Node: failed exports, rejected settings (default: a
   * `createLogger` for the service). See {@link createDiagLogger}.
   */
  log?: Pick<Logger, "warn" | "info">;
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

// The OTel specification reads an empty variable as unset; compose writes `VAR: ${VAR:-}`.
const set = (value: string | undefined) => value !== undefined && value.trim() !== "";
const exporterChosen = (value: string | undefined) =>
  set(value) && !value!.split(",").every((name) => name.trim() === "none");

/**
 * Parses `OTEL_RESOURCE_ATTRIBUTES` as the specification writes it: comma-separated `key=value`
 * pairs with percent-encoded values. An entry that cannot be read is skipped (NodeSDK's own
 * reader drops it too).
 *
 * @example
 * resourceAttributesFromEnv("service.name=engine,service.instance.id=a%2C1")
 * // { "service.name": "engine", "service.instance.id": "a,1" }
 */
export function resourceAttributesFromEnv(value: string | undefined): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const entry of (value ?? "").split(",")) {
    const at = entry.indexOf("=");
    const key = entry.slice(0, at).trim();
    if (at < 0 || key === "") continue;
    try {
      attributes[decodeURIComponent(key)] = decodeURIComponent(entry.slice(at + 1).trim());
    } catch {
      // A malformed percent-escape: not an attribute anyone can rely on.
    }
  }
  return attributes;
}

/**
 * The `service.instance.id` this process reports unless `OTEL_RESOURCE_ATTRIBUTES` names one.
 * Replicas share `service.name`, and the collector's Prometheus exporter keys series by
 * service.name and service.instance.id, so without it replicas overwrite each other's counters.
 * `host:pid` rather than a random UUID: it is readable in Prometheus' `instance` label and names
 * the container (compose gives each replica its own hostname), and a restarted container, whose
 * processes start in the same order and so usually get the same pids, goes on with its series
 * instead of adding new ones each time.
 */
export function defaultServiceInstanceId(): string {
  return `${hostname()}:${process.pid}`;
}

/** Variables that turn telemetry on under Node; under Deno only with `OTEL_DENO=true`. */
const DENO_IGNORED = [
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
  "OTEL_TRACES_EXPORTER",
  "OTEL_METRICS_EXPORTER",
];

/**
 * Decides what to start from the standard `OTEL_*` variables, without side effects.
 * Telemetry is on only when somewhere to send it is configured: an OTLP endpoint, or an
 * explicit `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` (e.g. `console`). Without one, no
 * SDK is started and every `@opentelemetry/api` call stays a no-op, which is what
 * "costs next to nothing" means.
 */
export function telemetryPlan(service: string, env: Env, isDeno: boolean): TelemetryPlan {
  const fromAttributes = resourceAttributesFromEnv(env.OTEL_RESOURCE_ATTRIBUTES)["service.name"];
  const attributesName = set(fromAttributes) ? fromAttributes : undefined;
  const envName = set(env.OTEL_SERVICE_NAME) ? env.OTEL_SERVICE_NAME!.trim() : undefined;
  // The specification's order: OTEL_SERVICE_NAME, then service.name in OTEL_RESOURCE_ATTRIBUTES,
  // then the name the code passes.
  const serviceName = envName ?? attributesName ?? service;
  const off = (mode: "deno" | "off", reason: string): TelemetryPlan => ({
    mode,
    reason,
    serviceName,
    traces: false,
    metrics: false,
  });
  // Deno registers its own providers into the API global when OTEL_DENO=true; a second SDK
  // would fight over the globals. It takes the service name only from the environment as it was
  // when Deno started, so `service` cannot name it; and Deno 2 (checked with 2.9) lets
  // service.name in OTEL_RESOURCE_ATTRIBUTES win over OTEL_SERVICE_NAME, the reverse of the
  // specification, so this says what Deno will export.
  if (isDeno) {
    return {
      ...off("deno", "Deno's built-in OpenTelemetry (OTEL_DENO=true) is used"),
      serviceName: attributesName ?? envName ?? DENO_UNNAMED_SERVICE,
    };
  }
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") {
    return off("off", "OTEL_SDK_DISABLED=true");
  }
  const anyEndpoint = set(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const traces = !set(env.OTEL_TRACES_EXPORTER)
    ? anyEndpoint || set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
    : exporterChosen(env.OTEL_TRACES_EXPORTER);
  const metrics = !set(env.OTEL_METRICS_EXPORTER)
    ? anyEndpoint || set(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)
    : exporterChosen(env.OTEL_METRICS_EXPORTER);
  if (!traces && !metrics) return off("off", "no OTEL_EXPORTER_OTLP_ENDPOINT configured");
  return { mode: "node-sdk", reason: "NodeSDK", serviceName, traces, metrics };
}

/**
 * `LOG_LEVEL` read as the services' config reads it (trimmed, any case; `info` when unset or not
 * a level), so telemetry's own lines obey it before the service's logger exists.
 */
export function logLevelFrom(value: string | undefined): LogLevelName {
  const name = (value ?? "").trim().toLowerCase();
  return Object.hasOwn(LOG_LEVELS, name) ? (name as LogLevelName) : "info";
}

/**
 * Starts telemetry for `service` (used as `service.name` unless `OTEL_SERVICE_NAME` or
 * `OTEL_RESOURCE_ATTRIBUTES` name it) and
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
  let logger: Pick<Logger, "warn" | "info"> | undefined = options.log;
  const log = () => {
    logger ??= createLogger({ service, level: logLevelFrom(process.env.LOG_LEVEL) });
    return logger;
  };
  const warn =
    options.warn ??
    ((message: string, fields: Record<string, unknown>) => log().warn(message, fields));
  const denoOtel = /^(true|1)$/i.test(process.env.OTEL_DENO ?? "");
  if (plan.mode === "deno" && !denoOtel) {
    // Set up as for Node (a compose file, a copied env): say why nothing is exported.
    const asked = DENO_IGNORED.filter((name) => set(process.env[name]));
    if (asked.length) {
      warn(
        `telemetry is off: under Deno it is Deno's own OpenTelemetry, on with OTEL_DENO=true (${asked.join(", ")} set)`,
        { variables: asked },
      );
    }
  }
  if (plan.mode === "deno" && denoOtel) {
    if (plan.serviceName === DENO_UNNAMED_SERVICE) {
      const fix = `OTEL_SERVICE_NAME=${service}`;
      warn(`Deno exports this service as ${DENO_UNNAMED_SERVICE}; start it with ${fix}`, {});
    }
    registerResourceMetrics(metrics.getMeter("resources"));
  }
  if (plan.mode !== "node-sdk") return async function noTelemetryToStop() {};

  // Before the SDK is built, so that what it says about its settings is logged too.
  diag.setLogger(createDiagLogger(log()), {
    logLevel: diagLogLevel(process.env.OTEL_LOG_LEVEL),
    suppressOverrideMessage: true,
  });
  // Imported only here so that Deno, and Node with telemetry off, never load the SDK.
  const { NodeSDK, resources } = await import("@opentelemetry/sdk-node");
  const attributes = resourceAttributesFromEnv(process.env.OTEL_RESOURCE_ATTRIBUTES);
  const config = {
    // Defaults under the environment's resource: NodeSDK merges OTEL_RESOURCE_ATTRIBUTES and
    // OTEL_SERVICE_NAME over this, as the plan above resolved them. Its `serviceName` option
    // would instead override both.
    resource: resources.defaultResource().merge(
      resources.resourceFromAttributes({
        "service.name": plan.serviceName,
        "service.instance.id": set(attributes["service.instance.id"])
          ? attributes["service.instance.id"]
          : defaultServiceInstanceId(),
      }),
    ),
    ...(set(process.env.OTEL_SPAN_LINK_COUNT_LIMIT)
      ? {}
      : { spanLimits: { linkCountLimit: SPAN_LINK_COUNT_LIMIT } }),
    // An empty list keeps NodeSDK from defaulting an exporter to localhost:4318 for the signal
    // nobody configured (e.g. only OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set).
    ...(plan.traces ? {} : { spanProcessors: [] }),
    ...(plan.metrics ? {} : { metricReaders: [] }),
    // Logs stay JSON lines on stdout (see logger.ts); no OTel log pipeline is started.
    logRecordProcessors: [],
  };
  // NodeSDK replaces the diag logger with a console one when OTEL_LOG_LEVEL is set; hidden for
  // the constructor's synchronous run, the level is honoured by the logger set above instead.
  const logLevel = process.env.OTEL_LOG_LEVEL;
  delete process.env.OTEL_LOG_LEVEL;
  let sdk: InstanceType<typeof NodeSDK>;
  try {
    sdk = new NodeSDK(config);
  } finally {
    if (logLevel !== undefined) process.env.OTEL_LOG_LEVEL = logLevel;
  }
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

const DIAG_LEVELS: Record<string, DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

/** `OTEL_LOG_LEVEL` as the JS SDK reads it (case-insensitive); unset or unknown: warnings up. */
export function diagLogLevel(value: string | undefined): DiagLogLevel {
  return DIAG_LEVELS[value?.trim().toLowerCase() ?? ""] ?? DiagLogLevel.WARN;
}

/** The text of one diagnostic: the SDK hands failed exports over as a JSON-serialised error. */
function diagText(message: string, args: unknown[]): string {
  let text = message;
  if (message.startsWith("{")) {
    try {
      const parsed = JSON.parse(message) as { message?: unknown };
      if (typeof parsed.message === "string") text = parsed.message;
    } catch {
      // Not an error after all; the message is kept as it came.
    }
  }
  for (const arg of args) {
    const part = arg instanceof Error ? arg.message : typeof arg === "string" ? arg : "";
    // Other arguments are whole payloads at debug level (the spans about to be sent).
    if (part !== "") text += ` ${part.slice(0, 500)}`;
  }
  return text;
}

/**
 * A diag logger writing the SDK's diagnostics through our JSON logger without flooding it. A
 * collector that is down makes every export fail, every few seconds for as long as it is down;
 * each distinct message is written when first seen and then at most once per
 * {@link DIAG_REPEAT_MS}, with `suppressed` counting the ones left out since the last line;
 * messages that differ only in their numbers (a port, a duration, a count) count as the same.
 * Errors and warnings become `warn` lines, the rest (only with `OTEL_LOG_LEVEL` lowered)
 * `info`. The exporters report no success through diag, so recovery is not announced: silence
 * after the last line is the sign of it.
 *
 * @example
 * diag.setLogger(createDiagLogger(createLogger({ service: "engine" })), DiagLogLevel.WARN);
 */
export function createDiagLogger(
  log: Pick<Logger, "warn" | "info">,
  now: () => number = Date.now,
): DiagLogger {
  // Message → when it was last written and how many identical ones were left out since; kept
  // to the newest 100 messages so that varying texts cannot grow it without bound.
  const recent = new Map<string, { at: number; suppressed: number }>();
  const writer = (level: "warn" | "info") =>
    function writeDiagnostic(message: string, ...args: unknown[]) {
      try {
        const text = diagText(String(message), args);
        // Numbers masked: the same failure with another port, duration or count is a repeat
        // (the newest text is the one written).
        const key = text.replace(/\d+/g, "#");
        const time = now();
        const last = recent.get(key);
        if (last && time - last.at < DIAG_REPEAT_MS) {
          last.suppressed++;
          return;
        }
        recent.delete(key);
        recent.set(key, { at: time, suppressed: 0 });
        if (recent.size > 100) recent.delete(recent.keys().next().value as string);
        // Outside any span: the SDK's export callbacks run in the context of the span whose end
        // scheduled the export, and a collector's failure is no part of that frame's trace.
        context.with(ROOT_CONTEXT, () =>
          log[level](`opentelemetry: ${text}`, last ? { suppressed: last.suppressed } : {}),
        );
      } catch {
        // The SDK calls this from its export callbacks: a failure here must not reach them.
      }
    };
  const warn = writer("warn");
  const info = writer("info");
  return { error: warn, warn, info, debug: info, verbose: info };
}
