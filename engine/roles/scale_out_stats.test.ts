// Scale-out scoring figures and metrics against a real nats-server: an ingest replica (served over HTTP) and an inference worker in this process, the global meter provider read in memory.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { metrics } from "@opentelemetry/api";
import { metrics as sdk } from "@opentelemetry/sdk-node";
import { createLogger } from "../../telemetry/logger.ts";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame } from "../_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { roleConfig } from "../_test/role_config.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { type RunningServer, serve } from "../serve.ts";
import { createIngestRole } from "./ingest_role.ts";
import { createWorkerRole } from "./worker_role.ts";

const STREAM = "SCORING";
const PARTITIONS = 2;
const FRAMES = 12;
const T0 = Date.UTC(2026, 2, 1);

// Set before the roles are made: they create their instruments from the global provider.
const reader = new sdk.PeriodicExportingMetricReader({
  exporter: new sdk.InMemoryMetricExporter(sdk.AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 60_000,
});
const provider = new sdk.MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(provider);

let server: NatsServer;
let model: ModelFixture;
let sink: AlertSink;
let dataDir: string;
let nc: NatsConnection;
let leases: KV;
let worker: ReturnType<typeof createWorkerRole>;
let ingest: ReturnType<typeof createIngestRole>;
let http: RunningServer;
/** Windows the frames complete: one per frame from the window_size-th on. */
let expected = 0;

before(async () => {
  [server, model, sink] = await Promise.all([
    startNatsServer(),
    trainFixtureModel({ features: 12, name: "scoring_fixture" }),
    startAlertSink(),
  ]);
  const meta = JSON.parse(await readFile(join(model.dir, `${model.name}.json`), "utf8"));
  expected = FRAMES - meta.window_size + 1;
  assert.ok(expected > 0, `window size ${meta.window_size} fits ${FRAMES} frames`);
  dataDir = await mkdtemp(join(tmpdir(), "scoring-data-"));
  const env = (role: "ingest" | "worker") =>
    roleConfig(role, server.url, model, {
      NATS_STREAM: STREAM,
      NATS_PARTITIONS: String(PARTITIONS),
      DATA_DIR: dataDir,
      NESTJS_URL: sink.origin,
      INGEST_WORKERS: "0",
    });
  const log = createLogger({ service: "engine", level: "silent" });
  worker = createWorkerRole({ config: env("worker"), log });
  ingest = createIngestRole({ config: env("ingest"), log });
  await worker.start();
  await ingest.start();
  http = await serve(ingest.app.fetch, { hostname: "127.0.0.1", port: 0 });
  nc = await connect({ servers: server.url, timeout: 2000 });
  leases = await new Kvm(nc).open(`${STREAM}_leases`);
  await waitFor(
    async () =>
      (await (await worker.app.request("/stats")).json()).worker.partitions.length === PARTITIONS,
    "the worker to hold every partition",
    30_000,
    50,
  );
});

after(async () => {
  await http?.close();
  await Promise.allSettled([ingest?.shutdown(2000), worker?.shutdown(2000)]);
  await nc?.close();
  await sink?.close();
  await server?.remove();
  await model?.remove();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  await provider.shutdown();
});

function post(body: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${http.port}/data-enqueue`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: /stats as the replica serves it
async function replicaStats(): Promise<any> {
  return (await fetch(`http://127.0.0.1:${http.port}/stats`)).json();
}

/** The collected metrics by instrument name. */
async function collected() {
  const { resourceMetrics } = await reader.collect();
  return new Map(
    resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]),
  );
}

test("an ingest replica's /stats reports the workers' scoring: frames scored, latency and inference, per worker and combined", async () => {
  for (let i = 0; i < FRAMES; i++) {
    const body = jsonFrame(model.featureNames, model.normalFrame(i + 1), {
      stream_id: "line-1",
      timestamp: T0 + i * 1000,
    });
    const res = await post(body);
    assert.equal(res.status, 202, await res.text());
  }
  // One refused frame: a sensor missing.
  const refused = await post(JSON.stringify({ stream_id: "line-1", data: { sensor_0_temp: 1 } }));
  assert.equal(refused.status, 422);
  assert.equal((await refused.json()).error, "frame_missing_features");

  const stats = await waitFor(
    async () => {
      const s = await replicaStats();
      return s.frames.scored === expected ? s : undefined;
    },
    `the replica's /stats to report ${expected} frames scored`,
    30_000,
    50,
  );
  assert.deepEqual(stats.frames, { accepted: FRAMES, rejected: 1, duplicate: 0, scored: expected });
  assert.equal(stats.latency_ms.count, expected);
  assert.ok(stats.latency_ms.p50 > 0 && stats.latency_ms.p99 >= stats.latency_ms.p50);
  assert.ok(stats.batches > 0);
  assert.equal(stats.inference_ms.count, stats.batches);
  assert.ok(stats.inference_ms.p99 > 0);
  // The single process's shape, and the replica's own parts beside it.
  for (const key of ["queue", "alerts", "rss_bytes", "machine_off", "role", "bus"]) {
    assert.ok(key in stats, key);
  }
  assert.equal(stats.role, "ingest");
  assert.equal(stats.bus.live_workers, 1);
  // One worker: the combined view is its own /stats, figure for figure.
  const own = await (await worker.app.request("/stats")).json();
  // Nothing held: every alert's state was kept (the worker says so, as the single process does).
  assert.equal(own.alerts.held, 0);
  assert.equal("held_reason" in own.alerts, false);
  assert.equal(stats.workers.length, 1);
  const [w] = stats.workers;
  assert.equal(w.worker, "w1");
  assert.deepEqual(w.partitions, [0, 1]);
  assert.deepEqual(w.frames, { scored: expected });
  assert.deepEqual(w.latency_ms, own.latency_ms);
  assert.deepEqual(w.inference_ms, own.inference_ms);
  assert.deepEqual(stats.latency_ms, own.latency_ms);
  assert.deepEqual(stats.inference_ms, own.inference_ms);
  assert.equal(stats.batches, own.batches);
});

test("the ingest replica records the intake counters and the worker its batch, inference and depth instruments", async () => {
  // After the first test: its frames are scored.
  const byName = await collected();
  const sum = (name: string, attrs: Record<string, string> = {}) =>
    (byName.get(name)?.dataPoints ?? [])
      .filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))
      .reduce((n, p) => n + (p.value as number), 0);
  assert.equal(sum("engine.frames.accepted"), FRAMES);
  assert.equal(sum("engine.frames.rejected", { reason: "frame_missing_features" }), 1);

  const histogram = (name: string) => {
    const points = byName.get(name)?.dataPoints ?? [];
    assert.equal(points.length, 1, `${name} recorded`);
    return points[0].value as sdk.Histogram;
  };
  const stats = await replicaStats();
  const batchSize = histogram("engine.batch.size");
  assert.equal(batchSize.count, stats.batches);
  assert.equal(batchSize.sum, expected, "every window scored is in a batch");
  assert.equal(histogram("engine.inference.duration").count, stats.batches);
  assert.equal(histogram("engine.frame.latency").count, expected);

  // Gauges: the worker's read-ahead (drained: 0) and its outbox (every alert delivered or kept).
  const gauge = (name: string) => {
    const points = byName.get(name)?.dataPoints ?? [];
    assert.equal(points.length, 1, `${name} observed`);
    return points[0].value as number;
  };
  assert.equal(gauge("engine.queue.depth"), 0);
  assert.ok(gauge("engine.outbox.depth") >= 0);
});

test("a replica's /stats answers while a worker it knows of is gone, with the live workers' figures", async () => {
  // A heartbeat with no process behind it (a worker killed within its lease).
  await leases.put("w.gone", JSON.stringify({ expires: Date.now() + 60_000 }));
  try {
    const stats = await waitFor(
      async () => {
        const s = await replicaStats();
        return s.bus.live_workers === 2 ? s : undefined;
      },
      "the replica to see the gone worker's heartbeat",
      10_000,
      50,
    );
    assert.deepEqual(
      stats.workers.map((w: { worker: string }) => w.worker),
      ["w1"],
    );
    assert.equal(stats.frames.scored, expected);
  } finally {
    await leases.delete("w.gone");
  }
});
