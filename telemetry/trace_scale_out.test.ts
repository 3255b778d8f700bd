// Under scale-out (FRAME_BUS=nats) an alert's trace still reaches back to the frame that raised it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { type AlertSink, startAlertSink } from "../engine/_test/alert_sink.ts";
import { type NatsServer, startNatsServer } from "../engine/bus/_test/nats_server.ts";
import { createPlant } from "../models/signal/mod.ts";
import { type ReceivedSpan, startOtlpReceiver, waitFor } from "./_otlp_receiver.ts";
import { type ServiceProcess, startService } from "./_service_process.ts";

const SERVER = 2;
const CLIENT = 3;
const WINDOW = 5; // the committed model's window_size

describe("trace across the frame bus", () => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let nats: NatsServer;
  let sink: AlertSink;
  let engine: ServiceProcess | undefined;
  let dataDir: string;
  let engineUrl: string;

  before(async () => {
    receiver = await startOtlpReceiver();
    sink = await startAlertSink();
    nats = await startNatsServer();
    dataDir = mkdtempSync(join(tmpdir(), "trace-nats-test-"));
    // ENGINE_ROLE=all: an ingest replica and a worker in one process, talking only through NATS.
    engine = await startService("engine/main.ts", {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_SERVICE_NAME: "engine",
      APP_HOST: "127.0.0.1",
      APP_PORT: "0",
      NESTJS_URL: sink.origin,
      DEFAULT_DEVICE: "cpu",
      DATA_DIR: dataDir,
      BATCH_MAX_DELAY_MS: "0",
      ALERT_MODE: "frame",
      DECISIONS_POLL_S: "0",
      FRAME_BUS: "nats",
      ENGINE_ROLE: "all",
      NATS_URL: nats.url,
      NATS_PARTITIONS: "2",
      LOG_LEVEL: "debug",
    });
    engineUrl = `http://127.0.0.1:${engine.port}`;
    await waitFor(
      "engine ready",
      () =>
        fetch(`${engineUrl}/health/ready`).then(
          (res) => res.ok,
          () => false,
        ),
      90_000,
    );
  });

  after(async () => {
    await engine?.stop();
    await sink?.close();
    await nats?.remove();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function send(names: readonly string[], values: Float32Array, timestamp: number) {
    const data: Record<string, number> = {};
    for (let i = 0; i < names.length; i++) data[names[i]] = values[i];
    const res = await fetch(`${engineUrl}/data-enqueue`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(JSON.stringify({ data, stream_id: "trace-nats", timestamp })),
    });
    assert.equal(res.status, 202, await res.text());
  }

  test("an alert scored by a worker continues its frame's trace from the ingest replica", async () => {
    const plant = createPlant();
    const start = Date.UTC(2026, 0, 1);
    for (let i = 0; i < WINDOW; i++) await send(plant.featureNames, plant.next(), start + i * 1000);
    const anomalous = plant.next();
    anomalous[1234] += 1000 * plant.sensors.std[1234];
    await send(plant.featureNames, anomalous, start + WINDOW * 1000);

    const spans = receiver.spans;
    const find = (what: string, match: (s: ReceivedSpan) => boolean) =>
      waitFor(what, () => spans.find(match), 30_000);

    const delivery = await find("POST alert span", (s) => s.name === "POST alert");
    assert.equal(delivery.kind, CLIENT);
    await waitFor("alert at the sink", () => sink.requests.length > 0, 30_000);
    assert.match(String(sink.requests[0].headers.traceparent), new RegExp(delivery.traceId));

    // The delivery's parent is the replica's `enqueue frame` span, a child of the request's span.
    const ingest = await find("frame enqueue span", (s) => s.spanId === delivery.parentSpanId);
    assert.equal(ingest.name, "enqueue frame");
    assert.equal(ingest.traceId, delivery.traceId);
    assert.equal(ingest.attributes["engine.stream.id"], "trace-nats");
    assert.equal(ingest.attributes["engine.frame.outcome"], "accepted");
    const server = await find("engine server span", (s) => s.spanId === ingest.parentSpanId);
    assert.equal(server.kind, SERVER);
    assert.equal(server.name, "POST /data-enqueue");
    assert.equal(server.traceId, delivery.traceId);

    // The worker's batch links to that frame's span, one link per scored window.
    const batch = await find("inference batch span linked to the frame", (s) =>
      s.links.some((l) => l.spanId === ingest.spanId && l.traceId === ingest.traceId),
    );
    assert.equal(batch.name, "inference batch");
    assert.equal(batch.attributes["engine.execution_provider"], "cpu");
    assert.equal(batch.links.length, batch.attributes["engine.batch.size"]);
    // Its debug line carries its trace and each frame's latency.
    const line = await waitFor("the batch's debug line", () =>
      engine!.lines.find((l) => l.msg === "batch scored" && l.trace_id === batch.traceId),
    );
    const frames = line.frames as { latency_ms: number }[];
    assert.ok(frames.length > 0 && frames.every((f) => f.latency_ms >= 0), JSON.stringify(frames));
    assert.deepEqual(receiver.errors, []);
  });
});
