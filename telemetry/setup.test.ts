import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { after, type TestContext, test } from "node:test";
import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { startOtlpReceiver, waitFor } from "./_otlp_receiver.ts";
import { startTelemetry, telemetryPlan } from "./setup.ts";

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

test("telemetryPlan leaves Deno to its built-in SDK", () => {
  const plan = telemetryPlan("engine", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }, true);
  assert.equal(plan.mode, "deno");
});

test("telemetryPlan names a Deno service only through OTEL_SERVICE_NAME", () => {
  // Deno reads the variable when it starts; the name passed in code cannot reach its exporter.
  assert.equal(telemetryPlan("engine", {}, true).serviceName, "unknown_service:deno");
  assert.equal(
    telemetryPlan("engine", { OTEL_SERVICE_NAME: "engine-a" }, true).serviceName,
    "engine-a",
  );
});

// The two tests below share the process-wide API globals, so they run in this order.
const saved = { ...process.env };
after(() => {
  process.env = saved;
});

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
  const stop = await startTelemetry("stuck-collector", { warn: (msg) => warnings.push(msg) });
  trace.getTracer("probe").startSpan("never delivered").end();

  // The deadline passes while the flush is under way (the exporter has connected).
  await stop(exporting.signal);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /not flushed before the shutdown deadline/);
  // Called again (a second signal), it waits no longer than its own deadline either.
  await stop(AbortSignal.abort());
  assert.equal(warnings.length, 2);
});
