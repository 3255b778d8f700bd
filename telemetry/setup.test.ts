import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { hostname } from "node:os";
import { after, type TestContext, test } from "node:test";
import { context, DiagLogLevel, type Link, metrics, propagation, trace } from "@opentelemetry/api";
import { startOtlpReceiver, waitFor } from "./_otlp_receiver.ts";
import {
  createDiagLogger,
  DIAG_REPEAT_MS,
  diagLogLevel,
  resourceAttributesFromEnv,
  SPAN_LINK_COUNT_LIMIT,
  startTelemetry,
  telemetryPlan,
} from "./setup.ts";

test("telemetryPlan starts nothing without an OTLP endpoint", () => {
  const plan = telemetryPlan("engine", {}, false);
  assert.equal(plan.mode, "off");
  assert.equal(plan.serviceName, "engine");
});

test("telemetryPlan starts NodeSDK for traces and metrics when an endpoint is set", () => {
  const plan = telemetryPlan(
    "engine",
    { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SERVICE_NAME: "engine-a" },
    false,
  );
  assert.deepEqual(plan, {
    mode: "node-sdk",
    reason: "NodeSDK",
    serviceName: "engine-a",
    traces: true,
    metrics: true,
  });
});

test("telemetryPlan starts only the signal whose endpoint is set", () => {
  const plan = telemetryPlan(
    "backend",
    { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" },
    false,
  );
  assert.equal(plan.traces, true);
  assert.equal(plan.metrics, false);
});

test("telemetryPlan honours OTEL_SDK_DISABLED and explicit exporters", () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" };
  assert.equal(telemetryPlan("x", { ...endpoint, OTEL_SDK_DISABLED: "true" }, false).mode, "off");
  const console = telemetryPlan("x", { OTEL_TRACES_EXPORTER: "console" }, false);
  assert.equal(console.traces, true);
  assert.equal(console.metrics, false);
  const none = telemetryPlan("x", { ...endpoint, OTEL_METRICS_EXPORTER: "none" }, false);
  assert.equal(none.traces, true);
  assert.equal(none.metrics, false);
});

test("telemetryPlan reads an empty OTEL_TRACES_EXPORTER or OTEL_METRICS_EXPORTER as unset", () => {
  // Compose writes `OTEL_TRACES_EXPORTER: ${OTEL_TRACES_EXPORTER:-}`; the spec reads "" as unset.
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" };
  const blank = telemetryPlan(
    "x",
    { ...endpoint, OTEL_TRACES_EXPORTER: "", OTEL_METRICS_EXPORTER: " " },
    false,
  );
  assert.equal(blank.mode, "node-sdk");
  assert.equal(blank.traces, true);
  assert.equal(blank.metrics, true);
  const noEndpoint = telemetryPlan("x", { OTEL_TRACES_EXPORTER: "" }, false);
  assert.equal(noEndpoint.mode, "off");
});

test("telemetryPlan takes the service name from OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then the code", () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" };
  const attributes = { OTEL_RESOURCE_ATTRIBUTES: "deployment=a,service.name=from%20attributes" };
  assert.equal(telemetryPlan("engine", endpoint, false).serviceName, "engine");
  assert.equal(
    telemetryPlan("engine", { ...endpoint, ...attributes }, false).serviceName,
    "from attributes",
  );
  assert.equal(
    telemetryPlan("engine", { ...endpoint, ...attributes, OTEL_SERVICE_NAME: "from-env" }, false)
      .serviceName,
    "from-env",
  );
});

test("resourceAttributesFromEnv reads percent-encoded pairs and skips malformed ones", () => {
  assert.deepEqual(
    resourceAttributesFromEnv(
      " service.name = engine ,bad,=x,k=%E0%A4%A,service.instance.id=a%2C1",
    ),
    { "service.name": "engine", "service.instance.id": "a,1" },
  );
  assert.deepEqual(resourceAttributesFromEnv(undefined), {});
});

test("telemetryPlan leaves Deno to its built-in SDK", () => {
  const plan = telemetryPlan("engine", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }, true);
  assert.equal(plan.mode, "deno");
});

test("telemetryPlan names a Deno service only from its environment, as Deno reads it", () => {
  // Deno reads the variable when it starts; the name passed in code cannot reach its exporter.
  assert.equal(telemetryPlan("engine", {}, true).serviceName, "unknown_service:deno");
  assert.equal(
    telemetryPlan("engine", { OTEL_SERVICE_NAME: "engine-a" }, true).serviceName,
    "engine-a",
  );
  // Deno 2.9 lets OTEL_RESOURCE_ATTRIBUTES win, the reverse of the specification's order.
  const attributes = { OTEL_RESOURCE_ATTRIBUTES: "service.name=engine-b" };
  assert.equal(telemetryPlan("engine", attributes, true).serviceName, "engine-b");
  assert.equal(
    telemetryPlan("engine", { ...attributes, OTEL_SERVICE_NAME: "engine-a" }, true).serviceName,
    "engine-b",
  );
});

test("createDiagLogger writes a repeated diagnostic at most once a minute, counting the rest", () => {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const log = {
    warn: (msg: string, fields: Record<string, unknown>) =>
      lines.push({ level: "warn", msg, fields }),
    info: (msg: string, fields: Record<string, unknown>) =>
      lines.push({ level: "info", msg, fields }),
  };
  let now = 0;
  const diagnostics = createDiagLogger(log as never, () => now);
  // What loggingErrorHandler passes on for a failed export: the error, serialised.
  const refused = JSON.stringify({ message: "connect ECONNREFUSED 10.0.0.1:4318", stack: "..." });
  diagnostics.error(refused);
  now = 5_000;
  diagnostics.error(refused);
  diagnostics.error(refused);
  diagnostics.warn("export response retryable (status: 503)");
  now = DIAG_REPEAT_MS - 1;
  diagnostics.error(refused);
  now = 5_000 + DIAG_REPEAT_MS;
  diagnostics.error(refused);
  diagnostics.info("Export failed after maximum retry attempts", new Error("timeout"));

  assert.deepEqual(lines, [
    { level: "warn", msg: "opentelemetry: connect ECONNREFUSED 10.0.0.1:4318", fields: {} },
    { level: "warn", msg: "opentelemetry: export response retryable (status: 503)", fields: {} },
    {
      level: "warn",
      msg: "opentelemetry: connect ECONNREFUSED 10.0.0.1:4318",
      fields: { suppressed: 3 },
    },
    {
      level: "info",
      msg: "opentelemetry: Export failed after maximum retry attempts timeout",
      fields: {},
    },
  ]);
});

test("diagLogLevel reads OTEL_LOG_LEVEL and defaults to warnings", () => {
  assert.equal(diagLogLevel(undefined), DiagLogLevel.WARN);
  assert.equal(diagLogLevel(""), DiagLogLevel.WARN);
  assert.equal(diagLogLevel("Debug"), DiagLogLevel.DEBUG);
  assert.equal(diagLogLevel("none"), DiagLogLevel.NONE);
});

// The two tests below share the process-wide API globals, so they run in this order.
const saved = { ...process.env };
after(() => {
  process.env = saved;
});

/** A logger for the SDK's diagnostics that keeps them out of the test output. */
const quiet = { warn: () => {}, info: () => {} } as never;

test("startTelemetry without an endpoint keeps spans non-recording", async () => {
  for (const key of Object.keys(process.env)) if (key.startsWith("OTEL_")) delete process.env[key];
  const stop = await startTelemetry("quiet");
  const span = trace.getTracer("quiet").startSpan("nothing");
  assert.equal(span.isRecording(), false);
  span.end();
  await stop();
});

test("startTelemetry exports spans and metrics as OTLP JSON and flushes on shutdown", async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = "http/json";
  process.env.OTEL_SERVICE_NAME = "probe-service";
  // Long intervals: only the shutdown flush can deliver within the test.
  process.env.OTEL_BSP_SCHEDULE_DELAY = "60000";
  process.env.OTEL_METRIC_EXPORT_INTERVAL = "60000";

  const stop = await startTelemetry("ignored-name");
  const span = trace.getTracer("probe").startSpan("probe span", { attributes: { n: 1 } });
  span.end();
  metrics.getMeter("probe").createCounter("probe.count").add(3, { reason: "x" });

  await Promise.all([stop(), stop()]);
  const received = await waitFor("the probe span", () =>
    receiver.spans.find((s) => s.name === "probe span"),
  );
  assert.equal(received.service, "probe-service");
  assert.equal(received.attributes.n, 1);
  assert.match(received.traceId, /^[0-9a-f]{32}$/);
  const point = await waitFor("the probe counter", () =>
    receiver.points.find((p) => p.metric === "probe.count"),
  );
  assert.equal(point.value, 3);
  const cpu = receiver.points.find((p) => p.metric === "process.cpu.utilization");
  assert.ok(cpu && cpu.value >= 0 && cpu.unit === "1", "resource gauges registered by start-up");
  assert.deepEqual(point.attributes, { reason: "x" });
  assert.deepEqual(receiver.errors, []);
});

/**
 * Runs `_deno_probe.ts` under Deno's built-in SDK with `env` (Deno's OTLP switched on), killed when
 * the test ends. `arrived` waits for what `check` finds, failing at once with the probe's output
 * if it exits first.
 */
function runDenoProbe(t: TestContext, env: NodeJS.ProcessEnv) {
  const deno = new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  const probe = new URL("./_deno_probe.ts", import.meta.url).pathname;
  const child = spawn(deno, ["run", "-A", probe], {
    env: { ...env, OTEL_DENO: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => {
      output += chunk;
    });
  }
  let exitCode: number | null = null;
  child.once("exit", (code) => {
    exitCode = code;
  });
  t.after(async () => {
    if (exitCode !== null) return;
    const gone = once(child, "exit");
    child.kill("SIGKILL");
    await gone;
  });
  return {
    /** stdout + stderr so far. */
    output: () => output,
    arrived: <T>(what: string, check: () => T | undefined) =>
      waitFor(what, () => {
        if (exitCode !== null) throw new Error(`Deno probe exited ${exitCode}: ${output}`);
        return check();
      }),
  };
}

test("startTelemetry leaves Deno's built-in SDK to export through the same API", async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const { arrived } = runDenoProbe(t, {
    ...saved,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_SERVICE_NAME: "deno-probe",
    OTEL_METRIC_EXPORT_INTERVAL: "200",
  });
  const span = await arrived("the Deno span", () =>
    receiver.spans.find((s) => s.name === "deno span"),
  );
  assert.equal(span.service, "deno-probe");
  assert.equal(span.attributes.runtime, "deno");
  await arrived("the Deno counter", () => receiver.points.find((p) => p.metric === "probe.deno"));
  const rss = await arrived("the Deno memory gauge", () =>
    receiver.points.find((p) => p.metric === "process.memory.usage"),
  );
  assert.ok(rss.value > 1024 * 1024);
});

test("startTelemetry under Deno without OTEL_SERVICE_NAME says how to name the service", async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const { OTEL_SERVICE_NAME: _unset, ...env } = saved;
  const probe = runDenoProbe(t, {
    ...env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
  });
  const span = await probe.arrived("the Deno span", () =>
    receiver.spans.find((s) => s.name === "deno span"),
  );
  assert.equal(span.service, "unknown_service:deno");
  const output = probe.output();
  const warning = output.split("\n").find((line) => line.includes("unknown_service:deno"));
  assert.ok(warning, output);
  assert.match(warning, /"level":"warn"/);
  assert.match(warning, /OTEL_SERVICE_NAME=deno-probe/);
});

test("startTelemetry's shutdown gives up at its deadline on a collector that never answers", async (t) => {
  // A collector that takes connections and never answers: the flush could only end with the
  // exporter's own timeout, after the deadline.
  const sockets = new Set<Socket>();
  const exporting = new AbortController();
  const collector = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    exporting.abort();
  });
  collector.listen(0, "127.0.0.1");
  await once(collector, "listening");
  const { port } = collector.address() as { port: number };
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    collector.close();
  });
  // A fresh SDK registers its providers only into empty API globals.
  for (const api of [trace, metrics, context, propagation]) api.disable();
  for (const key of Object.keys(process.env)) if (key.startsWith("OTEL_")) delete process.env[key];
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = "http/json";
  process.env.OTEL_EXPORTER_OTLP_TIMEOUT = "1000";
  process.env.OTEL_BSP_SCHEDULE_DELAY = "60000";
  process.env.OTEL_METRIC_EXPORT_INTERVAL = "60000";
  const warnings: string[] = [];
  const stop = await startTelemetry("stuck-collector", {
    warn: (msg) => warnings.push(msg),
    log: quiet,
  });
  trace.getTracer("probe").startSpan("never delivered").end();

  // The deadline passes while the flush is under way (the exporter has connected).
  await stop(exporting.signal);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /not flushed before the shutdown deadline/);
  // Called again (a second signal), it waits no longer than its own deadline either.
  await stop(AbortSignal.abort());
  assert.equal(warnings.length, 2);
});

/** Starts a fresh NodeSDK with only `env` of the OTEL_ variables. */
async function startFresh(service: string, env: Record<string, string>, log = quiet) {
  // A fresh SDK registers its providers only into empty API globals.
  for (const api of [trace, metrics, context, propagation]) api.disable();
  for (const key of Object.keys(process.env)) if (key.startsWith("OTEL_")) delete process.env[key];
  Object.assign(process.env, env);
  return startTelemetry(service, { warn: () => {}, log });
}

/** The resource attributes a span of the SDK carries (what its exporter sends). */
function resourceOf(span: unknown): Record<string, unknown> {
  return (span as { resource: { attributes: Record<string, unknown> } }).resource.attributes;
}

test("startTelemetry names the resource by OTEL_RESOURCE_ATTRIBUTES and gives each process an instance id", async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const base = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_METRICS_EXPORTER: "none",
  };

  let stop = await startFresh("code-name", {
    ...base,
    OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attributes",
  });
  const span = trace.getTracer("probe").startSpan("named by attributes");
  span.end();
  assert.equal(resourceOf(span)["service.name"], "from-attributes");
  // Replicas share service.name; the collector tells their series apart by this.
  assert.equal(resourceOf(span)["service.instance.id"], `${hostname()}:${process.pid}`);
  await stop();
  const received = await waitFor("the span", () =>
    receiver.spans.find((s) => s.name === "named by attributes"),
  );
  assert.equal(received.service, "from-attributes");

  stop = await startFresh("code-name", {
    ...base,
    OTEL_SERVICE_NAME: "from-env",
    OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attributes,service.instance.id=replica-7",
  });
  const second = trace.getTracer("probe").startSpan("named by the environment");
  second.end();
  assert.equal(resourceOf(second)["service.name"], "from-env");
  assert.equal(resourceOf(second)["service.instance.id"], "replica-7");
  await stop();
});

test("startTelemetry keeps a link per frame of the largest batch unless OTEL_SPAN_LINK_COUNT_LIMIT is set", async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const base = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_METRICS_EXPORTER: "none",
    OTEL_BSP_SCHEDULE_DELAY: "60000",
  };
  const tracer = () => trace.getTracer("probe");
  const links = (count: number): Link[] =>
    Array.from({ length: count }, () => {
      const frame = tracer().startSpan("frame");
      frame.end();
      return { context: frame.spanContext() };
    });
  const linksKept = (span: unknown) => (span as { links: Link[] }).links.length;

  let stop = await startFresh("links", base);
  const batch = tracer().startSpan("inference batch", { links: links(SPAN_LINK_COUNT_LIMIT + 1) });
  batch.end();
  assert.equal(SPAN_LINK_COUNT_LIMIT, 4096);
  assert.equal(linksKept(batch), SPAN_LINK_COUNT_LIMIT);
  await stop(AbortSignal.timeout(5000));

  stop = await startFresh("links", { ...base, OTEL_SPAN_LINK_COUNT_LIMIT: "5" });
  const limited = tracer().startSpan("inference batch", { links: links(10) });
  limited.end();
  assert.equal(linksKept(limited), 5);
  await stop(AbortSignal.timeout(5000));
});

test("startTelemetry logs failing exports once, not once per export", async (t) => {
  // A collector that takes each connection and drops it: every export fails the same way.
  let connections = 0;
  const collector = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  collector.listen(0, "127.0.0.1");
  await once(collector, "listening");
  const { port } = collector.address() as { port: number };
  t.after(() => collector.close());

  // Unset, and set (NodeSDK would then install a console logger of its own).
  for (const level of [undefined, "warn"]) {
    const lines: { msg: string; fields: Record<string, unknown> }[] = [];
    const log = {
      warn: (msg: string, fields: Record<string, unknown>) => lines.push({ msg, fields }),
      info: () => {},
    };
    const stop = await startFresh(
      "failing-exports",
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_TIMEOUT: "300",
        OTEL_BSP_SCHEDULE_DELAY: "20",
        OTEL_METRICS_EXPORTER: "none",
        ...(level ? { OTEL_LOG_LEVEL: level } : {}),
      },
      log as never,
    );
    // A span at a time, so that each export has something to send and fails on its own.
    const from = connections;
    await waitFor("five failed exports", () => {
      trace.getTracer("probe").startSpan("lost").end();
      return connections - from >= 5;
    });
    // Only this collector's failures: a reader of an earlier test in this process, still
    // stopping, may log its own (another port's ECONNREFUSED) through the same global logger.
    const ours = () =>
      lines.filter((l) => !/127\.0\.0\.1:\d+/.test(l.msg) || l.msg.includes(`127.0.0.1:${port}`));
    await waitFor("the export failure in the log", () => ours().length > 0);
    // Each export starts after the last one's failure was reported, so a line per failure
    // would show by now.
    assert.equal(ours().length, 1, JSON.stringify(lines));
    assert.match(ours()[0].msg, /^opentelemetry: .*(socket hang up|ECONNRESET)/);
    await stop(AbortSignal.timeout(1000));
  }
});

test("createDiagLogger takes diagnostics that differ only in their numbers as repeats", () => {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const log = {
    warn: (msg: string, fields: Record<string, unknown>) => lines.push({ msg, fields }),
    info: () => {},
  };
  let now = 0;
  const diagnostics = createDiagLogger(log as never, () => now);
  for (let i = 0; i < 5; i++) {
    now = i * 1_000;
    diagnostics.warn(
      `metrics export failed after ${120 + i} ms (connect ECONNREFUSED 10.0.0.1:${4318 + i})`,
    );
  }
  now = DIAG_REPEAT_MS + 1_000;
  diagnostics.warn("metrics export failed after 99 ms (connect ECONNREFUSED 10.0.0.1:4400)");
  diagnostics.warn("other failure");
  assert.deepEqual(lines, [
    {
      msg: "opentelemetry: metrics export failed after 120 ms (connect ECONNREFUSED 10.0.0.1:4318)",
      fields: {},
    },
    {
      msg: "opentelemetry: metrics export failed after 99 ms (connect ECONNREFUSED 10.0.0.1:4400)",
      fields: { suppressed: 4 },
    },
    { msg: "opentelemetry: other failure", fields: {} },
  ]);
});
