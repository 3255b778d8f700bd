// A NATS server restarted without its store: the roles make the stream and buckets again and go on.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";

const BASE = Date.UTC(2026, 0, 1);

let model: ModelFixture;
let sink: AlertSink;
let nats: NatsServer;
const procs: EngineProcess[] = [];

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "lost_12" });
  sink = await startAlertSink();
  nats = await startNatsServer();
});
after(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  await nats?.remove();
  await sink?.close();
  await model?.remove();
});

// biome-ignore lint/suspicious/noExplicitAny: /stats as the roles serve it
async function stats(port: number): Promise<any> {
  return (await fetch(`http://127.0.0.1:${port}/stats`)).json();
}

test("after NATS restarts with an empty store, ingest accepts again within seconds and the worker scores on", async () => {
  const env = {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    ALERT_MODE: "frame",
    INGEST_WORKERS: "0",
    FRAME_BUS: "nats",
    NATS_URL: nats.url,
    NATS_STREAM: "LOST",
    NATS_PARTITIONS: "1",
    NATS_LEASE_MS: "1500",
    NATS_PUBLISH_TIMEOUT_MS: "500",
  };
  const ingest = spawnEngine("node", { ...env, ENGINE_ROLE: "ingest" });
  const worker = spawnEngine("node", { ...env, ENGINE_ROLE: "worker", NATS_WORKER_ID: "w1" });
  procs.push(ingest, worker);
  const [ip, wp] = await Promise.all([ingest.port(), worker.port()]);
  await Promise.all([waitReady(ip), waitReady(wp)]);
  let i = 0;
  const send = async () => {
    const body = jsonFrame(model.featureNames, model.normalFrame(i), {
      stream_id: "s",
      timestamp: BASE + i * 1000,
    });
    const res = await fetch(`http://127.0.0.1:${ip}/data-enqueue`, { method: "POST", body });
    const answer = { status: res.status, body: await res.text() };
    if (res.status === 202) i++;
    return answer;
  };
  for (let k = 0; k < 8; k++) assert.equal((await send()).status, 202);
  await waitFor(async () => (await stats(wp)).frames.scored >= 4, "the worker to score", 20_000);
  const before = (await stats(wp)).frames.scored;

  // A new container without its volume: the same server, nothing in it.
  await nats.remove();
  await nats.start();
  const answers: string[] = [];
  await waitFor(
    async () => {
      const { status, body } = await send();
      if (status !== 202) answers.push(`${status} ${body.slice(0, 120)}`);
      return status === 202;
    },
    "ingest to accept frames again",
    15_000,
    200,
  ).catch((error) => {
    throw new Error(`${(error as Error).message}; answers: ${[...new Set(answers)].join(" | ")}`);
  });
  // Whichever role noticed first made them again; both say so in /stats.
  const [{ bus }, { worker: w }] = await Promise.all([stats(ip), stats(wp)]);
  assert.ok(
    bus.repair.repairs + w.bus_repair.repairs >= 1,
    JSON.stringify([bus.repair, w.bus_repair]),
  );
  assert.equal(bus.repair.repairing, false);
  // The worker takes its partition again (its lease went with the store) and scores new frames.
  for (let k = 0; k < 8; k++) await send();
  await waitFor(
    async () => (await stats(wp)).frames.scored >= before + 4,
    "the worker to score frames sent after the restart",
    20_000,
    100,
  );
});
