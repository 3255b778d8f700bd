// Silent streams under scale-out against a real nats-server: an ingest replica (served over HTTP) lists a stream its worker found silent, judged by the replica's reception time, and still lists it once another worker took its partition over, in this process.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame } from "../_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { roleConfig } from "../_test/role_config.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { partitionOf } from "../bus/partition_of.ts";
import { type RunningServer, serve } from "../serve.ts";
import { createIngestRole } from "./ingest_role.ts";
import { createWorkerRole } from "./worker_role.ts";

const STREAM = "SILENT";
const T0 = Date.UTC(2026, 2, 1);

let server: NatsServer;
let model: ModelFixture;
let sink: AlertSink;
let dataDir: string;
let ingest: ReturnType<typeof createIngestRole>;
let worker: ReturnType<typeof createWorkerRole> | undefined;
let http: RunningServer;

const env = (role: "ingest" | "worker") =>
  roleConfig(role, server.url, model, {
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: "2",
    DATA_DIR: dataDir,
    NESTJS_URL: sink.origin,
    INGEST_WORKERS: "0",
    // Silent after a second without a frame (and 10 of the stream's own intervals).
    INCIDENT_STALE_MS: "1000",
  });
const log = createLogger({ service: "engine", level: "silent" });

before(async () => {
  [server, model, sink] = await Promise.all([
    startNatsServer(),
    trainFixtureModel({ features: 12, name: "silent_fixture" }),
    startAlertSink(),
  ]);
  dataDir = await mkdtemp(join(tmpdir(), "silent-data-"));
  // The replica alone at first: the worker starts in the test, behind the frames.
  ingest = createIngestRole({ config: env("ingest"), log });
  await ingest.start();
  http = await serve(ingest.app.fetch, { hostname: "127.0.0.1", port: 0 });
});

after(async () => {
  await http?.close();
  await Promise.allSettled([ingest?.shutdown(2000), worker?.shutdown(2000)]);
  await sink?.close();
  await server?.remove();
  await model?.remove();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Sends frame `i` of `streamId` to the replica; the time just before it was sent and just after its 202. */
async function send(streamId: string, i: number): Promise<{ sent: number; answered: number }> {
  const sent = Date.now();
  const res = await fetch(`http://127.0.0.1:${http.port}/data-enqueue`, {
    method: "POST",
    body: jsonFrame(model.featureNames, model.normalFrame(i + 1), {
      stream_id: streamId,
      timestamp: T0 + i * 1000,
    }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 202, await res.text());
  return { sent, answered: Date.now() };
}

interface Silent {
  stream_id: string;
  last_accepted_at: string;
}

async function replicaSilent(): Promise<Silent[] | undefined> {
  return (await (await fetch(`http://127.0.0.1:${http.port}/stats`)).json()).silent;
}

test("an ingest replica's /stats lists a stream its worker found silent, with the replica's reception time of its last frame, until it sends again", async () => {
  for (let i = 0; i < 2; i++) await send("line-quiet", i);
  const last = await send("line-quiet", 2);
  // The worker starts after the frames were received: it reads them as a backlog.
  const workerStarted = Date.now();
  worker = createWorkerRole({ config: env("worker"), log });
  await worker.start();

  const listed = await waitFor(
    async () => (await replicaSilent())?.find((s) => s.stream_id === "line-quiet"),
    "the replica to list line-quiet as silent",
    30_000,
    50,
  );
  const lastAt = Date.parse(listed.last_accepted_at);
  assert.ok(
    last.sent <= lastAt && lastAt <= last.answered,
    `${listed.last_accepted_at}: when the replica received the last frame, not when the worker (started ${new Date(workerStarted).toISOString()}) read it`,
  );
  // The worker's own /stats lists it as the single process would.
  const own = await (await worker.app.request("/stats")).json();
  assert.deepEqual(own.silent, [listed]);

  await send("line-quiet", 3);
  await waitFor(
    async () => (await replicaSilent())?.every((s) => s.stream_id !== "line-quiet"),
    "line-quiet off the replica's list once it sent again",
    30_000,
    50,
  );
});

/** The worker's own `/stats`. */
async function workerStats(w: ReturnType<typeof createWorkerRole>) {
  return (await w.app.request("/stats")).json() as Promise<{
    silent: Silent[];
    worker: { partitions: number[]; taken: number };
  }>;
}

test("a stream gone silent stays listed with its last_accepted_at once a new worker has taken its partition over, until it sends again", async () => {
  if (!worker) {
    worker = createWorkerRole({ config: env("worker"), log });
    await worker.start();
  }
  const first = worker;
  // A partition the first test's stream is not in (its comeback would hold the replay point
  // back), and another stream of it whose frames go on after the dark line's last.
  const named = (prefix: string, partition: number) =>
    Array.from({ length: 16 }, (_, i) => `${prefix}-${i}`).find(
      (id) => partitionOf(id, 2) === partition,
    ) as string;
  const partition = 1 - partitionOf("line-quiet", 2);
  const dark = named("line-dark", partition);
  const busy = named("line-busy", partition);
  for (let i = 0; i < 3; i++) await send(dark, i);
  const listed = await waitFor(
    async () => (await replicaSilent())?.find((s) => s.stream_id === dark),
    `the replica to list ${dark} as silent`,
    30_000,
    50,
  );
  // The partition's bus time moves past the dark line's silence: its frames leave the replay
  // point, so the next owner reads none of them again and knows the line only from memory.
  const taken = (await workerStats(first)).worker.taken;
  for (let i = 0; i < 3; i++) await send(busy, i);
  await waitFor(
    async () => (await workerStats(first)).worker.taken >= taken + 3,
    "the first worker to take the busy line's frames",
    30_000,
    50,
  );
  await first.shutdown(5000);

  worker = createWorkerRole({ config: env("worker"), log });
  await worker.start();
  const next = worker;
  const own = await waitFor(
    async () => (await workerStats(next)).silent.find((s) => s.stream_id === dark),
    "the new worker to list the dark line as silent from the partition's memory",
    30_000,
    50,
  );
  assert.deepEqual(own, listed, "with the first worker's last_accepted_at");
  const again = await waitFor(
    async () => (await replicaSilent())?.find((s) => s.stream_id === dark),
    "the replica to list the dark line again, served by the new worker's post",
    30_000,
    50,
  );
  assert.deepEqual(again, listed);

  await send(dark, 3);
  await waitFor(
    async () =>
      (await replicaSilent())?.every((s) => s.stream_id !== dark) &&
      (await workerStats(next)).silent.every((s) => s.stream_id !== dark),
    "the dark line off the lists once it sent again",
    30_000,
    50,
  );
});
