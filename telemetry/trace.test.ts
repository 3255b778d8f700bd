// One anomalous frame through the real engine and backend yields one connected trace and the metrics.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { createPlant } from "../models/signal/mod.ts";
import { type ReceivedSpan, startOtlpReceiver, waitFor } from "./_otlp_receiver.ts";
import { type ServiceProcess, startService } from "./_service_process.ts";

const SERVER = 2;
const CLIENT = 3;
const WINDOW = 5; // the committed model's window_size

describe("trace across engine and backend", () => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let backend: ServiceProcess | undefined;
  let engine: ServiceProcess | undefined;
  let dataDir: string;
  let engineUrl: string;

  before(async () => {
    receiver = await startOtlpReceiver();
    dataDir = mkdtempSync(join(tmpdir(), "trace-test-"));
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_METRIC_EXPORT_INTERVAL: "300",
      OTEL_METRIC_EXPORT_TIMEOUT: "300",
      LOG_LEVEL: "debug",
    };
    backend = await startService("backend/main.ts", {
      ...otel,
      OTEL_SERVICE_NAME: "backend",
      HOST: "127.0.0.1",
      PORT: "0",
      SIMULATOR_RATE_HZ: "0",
    });
    engine = await startService("engine/main.ts", {
      ...otel,
      OTEL_SERVICE_NAME: "engine",
      APP_HOST: "127.0.0.1",
      APP_PORT: "0",
      NESTJS_URL: `http://127.0.0.1:${backend.port}`,
      DEFAULT_DEVICE: "cpu",
      DATA_DIR: dataDir,
      BATCH_MAX_DELAY_MS: "0",
      // One anomalous window, one alert: incident mode would wait for a second one to confirm.
      ALERT_MODE: "frame",
    });
    engineUrl = `http://127.0.0.1:${engine.port}`;
    await waitFor(
      "engine ready",
      () =>
        fetch(`${engineUrl}/health/ready`).then(
          (res) => res.ok,
          () => false,
        ),
      // Loading the model competes with the rest of the suite for two cores.
      90_000,
    );
  });

  after(async () => {
    await engine?.stop();
    await backend?.stop();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Posts one frame as the upstream producer does (gzip JSON) and expects 202. */
  async function send(names: readonly string[], values: Float32Array, timestamp: number) {
    const data: Record<string, number> = {};
    for (let i = 0; i < names.length; i++) data[names[i]] = values[i];
    const json = JSON.stringify({ data, stream_id: "trace-test", timestamp });
    const res = await fetch(`${engineUrl}/data-enqueue`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(json),
    });
    assert.equal(res.status, 202, await res.text());
  }

  test("one anomalous frame is traced from reception to the stored alert", async () => {
    const plant = createPlant();
    const start = Date.UTC(2026, 0, 1);
    for (let i = 0; i < WINDOW; i++) await send(plant.featureNames, plant.next(), start + i * 1000);
    const anomalous = plant.next();
    const feature = 1234;
    anomalous[feature] += 1000 * plant.sensors.std[feature];
    await send(plant.featureNames, anomalous, start + WINDOW * 1000);
    // A rejected frame, so the rejection counter has a data point too.
    const bad = await fetch(`${engineUrl}/data-enqueue`, { method: "POST", body: "{not json" });
    assert.equal(bad.status, 400);

    const spans = receiver.spans;
    const find = (what: string, match: (s: ReceivedSpan) => boolean) =>
      waitFor(what, () => spans.find(match), 30_000);

    const stored = await find(
      "backend INSERT alert span",
      (s) =>
        s.service === "backend" &&
        /alert/.test(s.name) &&
        s.attributes["db.system.name"] === "postgresql",
    );
    const backendServer = await find(
      "backend server span",
      (s) => s.spanId === stored.parentSpanId,
    );
    assert.equal(backendServer.kind, SERVER);
    assert.equal(backendServer.name, "POST /api/v1/alert");
    assert.equal(backendServer.attributes["http.response.status_code"], 201);

    const delivery = await find(
      "engine alert delivery span",
      (s) => s.spanId === backendServer.parentSpanId,
    );
    assert.equal(delivery.service, "engine");
    assert.equal(delivery.kind, CLIENT);
    assert.equal(delivery.traceId, backendServer.traceId);
    assert.equal(typeof delivery.attributes["http.request.resend_count"], "number");

    // An alert continues the trace of the frame whose window raised it: its delivery's parent is
    // that frame's enqueue span, a child of the frame's HTTP server span.
    const ingest = await find("frame enqueue span", (s) => s.spanId === delivery.parentSpanId);
    assert.equal(ingest.service, "engine");
    assert.equal(ingest.traceId, delivery.traceId);
    const server = await find("engine server span", (s) => s.spanId === ingest.parentSpanId);
    assert.equal(server.kind, SERVER);
    assert.equal(server.name, "POST /data-enqueue");
    assert.equal(server.traceId, delivery.traceId);
    assert.equal(server.attributes["http.route"], "/data-enqueue");
    assert.equal(server.attributes["http.response.status_code"], 202);

    // The batch that scored the window links to that frame's span (and to every other frame in it).
    const batch = await find("inference batch span linked to the frame", (s) =>
      s.links.some((l) => l.spanId === ingest.spanId && l.traceId === ingest.traceId),
    );
    assert.equal(batch.service, "engine");
    for (const key of [
      "engine.batch.size",
      "engine.window.size",
      "engine.execution_provider",
      "engine.model.version",
    ]) {
      assert.ok(key in batch.attributes, `batch span has ${key}`);
    }
    assert.equal(batch.attributes["engine.execution_provider"], "cpu");
    assert.equal(batch.links.length, batch.attributes["engine.batch.size"]);
    for (const link of batch.links) {
      const frame = await find(`linked span ${link.spanId}`, (s) => s.spanId === link.spanId);
      assert.equal(frame.name, ingest.name);
    }
    // The batch's anomalies are logged at the default level with its trace and the resources
    // at inference; its per-batch line (debug) carries the trace too.
    const line = await waitFor("the batch's anomaly line", () =>
      engine!.lines.find((l) => l.msg === "anomalous windows" && l.trace_id === batch.traceId),
    );
    assert.equal(line.span_id, batch.spanId);
    assert.equal(line.service, "engine");
    assert.ok(Array.isArray(line.anomalies), "anomalous batch logs its anomalies");
    await waitFor("the batch's debug line", () =>
      engine!.lines.find((l) => l.msg === "batch scored" && l.trace_id === batch.traceId),
    );
    const resources = line.resources as Record<string, unknown>;
    assert.equal(typeof resources.cpu_percent, "number");
    assert.equal(typeof resources.rss_bytes, "number");
    assert.deepEqual(receiver.errors, []);
  });

  test("engine and backend export the catalogue's metrics", async () => {
    const wanted = {
      engine: [
        "engine.frame.latency",
        "engine.frames.accepted",
        "engine.frames.rejected",
        "engine.queue.depth",
        "engine.batch.size",
        "engine.inference.duration",
        "engine.alerts.sent",
        "process.cpu.utilization",
        "process.memory.usage",
      ],
      backend: ["backend.alerts.stored", "process.cpu.utilization", "process.memory.usage"],
    };
    for (const [service, names] of Object.entries(wanted)) {
      for (const name of names) {
        await waitFor(`${service} metric ${name}`, () =>
          receiver.points.find((p) => p.service === service && p.metric === name),
        );
      }
    }
    const rejected = receiver.points.find((p) => p.metric === "engine.frames.rejected");
    assert.equal(rejected?.attributes.reason, "invalid_json");
  });
});
