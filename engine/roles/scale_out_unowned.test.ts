// Partitions with no live worker against a real nats-server: an ingest replica (in this process, over HTTP) counts their frames from the stream, answers 429 past NATS_MAX_LAG and says so in /stats; worker processes come and are killed.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createLogger } from "../../telemetry/logger.ts";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame } from "../_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "../_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { roleConfig } from "../_test/role_config.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { partitionOf } from "../bus/partition_of.ts";
import { type RunningServer, serve } from "../serve.ts";
import { createIngestRole } from "./ingest_role.ts";

const STREAM = "UNOWNED";
const PARTITIONS = 2;
const MAX_LAG = 5;
const T0 = Date.UTC(2026, 2, 1);
const STREAM_ID = "line-1";
const PARTITION = partitionOf(STREAM_ID, PARTITIONS);

let server: NatsServer;
let model: ModelFixture;
let sink: AlertSink;
let ingest: ReturnType<typeof createIngestRole>;
let http: RunningServer;
const workers: EngineProcess[] = [];
let nc: NatsConnection;
let jsm: JetStreamManager;
let leases: KV;
/** The next frame's index: its timestamp and values. */
let next = 0;

before(async () => {
  [server, model, sink] = await Promise.all([
    startNatsServer(),
    trainFixtureModel({ features: 12, name: "unowned_fixture" }),
    startAlertSink(),
  ]);
  const config = roleConfig("ingest", server.url, model, {
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: String(PARTITIONS),
    NATS_MAX_LAG: String(MAX_LAG),
    INGEST_WORKERS: "0",
  });
  ingest = createIngestRole({ config, log: createLogger({ service: "engine", level: "silent" }) });
  await ingest.start();
  http = await serve(ingest.app.fetch, { hostname: "127.0.0.1", port: 0 });
  nc = await connect({ servers: server.url, timeout: 2000 });
  jsm = await jetstreamManager(nc);
  leases = await new Kvm(nc).open(`${STREAM}_leases`);
});

after(async () => {
  for (const w of workers) await w.kill("SIGKILL");
  await http?.close();
  await ingest?.shutdown(2000);
  await nc?.close();
  await sink?.close();
  await server?.remove();
  await model?.remove();
});

/** A worker process on the test's stream, ready (it claims the partitions on its own). */
async function startWorker(id: string): Promise<EngineProcess> {
  const worker = spawnEngine("node", {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    ALERT_MODE: "frame",
    INGEST_WORKERS: "0",
    FRAME_BUS: "nats",
    ENGINE_ROLE: "worker",
    NATS_URL: server.url,
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: String(PARTITIONS),
    NATS_LEASE_MS: "2000",
    NATS_WORKER_ID: id,
  });
  workers.push(worker);
  await waitReady(await worker.port());
  return worker;
}

function post(): Promise<Response> {
  const i = next++;
  return fetch(`http://127.0.0.1:${http.port}/data-enqueue`, {
    method: "POST",
    body: jsonFrame(model.featureNames, model.normalFrame(i), {
      stream_id: STREAM_ID,
      timestamp: T0 + i * 1000,
    }),
  });
}

async function accepted(): Promise<void> {
  const res = await post();
  assert.equal(res.status, 202, await res.text());
}

// biome-ignore lint/suspicious/noExplicitAny: /stats as the replica serves it
async function bus(): Promise<any> {
  return (await (await fetch(`http://127.0.0.1:${http.port}/stats`)).json()).bus;
}

/** Waits until `/stats` reports `partitions` unowned with `unscored` frames waiting on them. */
function reported(partitions: number[], unscored: number, what: string) {
  return waitFor(
    async () => {
      const b = await bus();
      const same =
        JSON.stringify(b.unowned_partitions) === JSON.stringify(partitions) &&
        b.unscored_unowned === unscored;
      return same ? b : undefined;
    },
    what,
    30_000,
    50,
  );
}

/** Sends `MAX_LAG` frames, sees them counted, and the next one refused `429 queue_full`. */
async function fillsToTheBound(): Promise<void> {
  for (let i = 0; i < MAX_LAG; i++) await accepted();
  const b = await reported([0, 1], MAX_LAG, `${MAX_LAG} frames counted on the unowned partition`);
  assert.equal(b.max_lag, MAX_LAG);
  const refused = await post();
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get("retry-after"), "1");
  const body = await refused.json();
  assert.equal(body.error, "queue_full");
  assert.equal(
    body.message,
    `no live worker owns partition ${PARTITION}: ${MAX_LAG} frames wait unscored (bound ${MAX_LAG})`,
  );
  // The bus's trouble, shared by every replica: not taken out of rotation (bus/README.md).
  assert.equal((await fetch(`http://127.0.0.1:${http.port}/health/ready`)).status, 200);
}

/** A worker takes the partitions and scores the backlog: nothing reported, frames accepted. */
async function caughtUp(): Promise<void> {
  const b = await reported([], 0, "the worker to own every partition");
  await waitFor(async () => (await bus()).max_lag === 0, "the worker to report no lag", 30_000, 50);
  assert.equal(b.live_workers, 1);
  await accepted();
  // Only the test's stream sends, to one partition: the stream's last frame is its last.
  const last = (await jsm.streams.info(STREAM)).state.last_seq;
  await waitFor(
    async () =>
      (await leases.get(`p.${PARTITION}`))?.json<{ committed: number }>().committed === last,
    "the worker to commit the last frame",
    30_000,
    50,
  );
}

test("a replica with no worker ever started refuses frames past NATS_MAX_LAG on a partition nobody owns, reports it in /stats, and stops once a worker caught up", async () => {
  // No lease record at all: every partition is unowned, nothing waits yet.
  const idle = await reported([0, 1], 0, "both partitions reported unowned");
  assert.equal(idle.live_workers, 0);
  await fillsToTheBound();
  assert.equal((await bus()).workers_behind, 1);
  await startWorker("w1");
  await caughtUp();
});

test("a killed worker's partitions are counted from the stream after its lease ran out, not from its last report, until another worker takes them", async () => {
  const [killed] = workers;
  assert.ok(killed, "the first test's worker");
  // Its lease records stay, naming it, with lag 0 and its last commit.
  await killed.kill("SIGKILL");
  // Every frame it had was committed: the replay frames it leaves in the stream are not counted.
  await reported([0, 1], 0, "the killed worker's partitions reported unowned");
  await fillsToTheBound();
  await startWorker("w2");
  await caughtUp();
});
