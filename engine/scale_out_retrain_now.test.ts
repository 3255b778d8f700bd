// "Retrain now" under scale-out with real processes (an ingest replica, a worker, a private nats-server, no schedule): the replica's POST /models/{name}/retrain is run by the worker and shown in the replica's GET /models.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as v from "valibot";
import { modelsResponseSchema, retrainResponseSchema } from "../contracts/models_api.ts";
import { NAME, plantFrames, trainInto } from "../models/retrain/_test/plant_history.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";

const TOKEN = "scale-out-retrain-now-token";
const admin = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

let server: NatsServer;
let root: string;
const processes: EngineProcess[] = [];

before(async () => {
  [server, root] = await Promise.all([
    startNatsServer(),
    mkdtemp(join(tmpdir(), "scale-out-retrain-now-")),
  ]);
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await server?.remove();
  await rm(root, { recursive: true, force: true });
});

test("scale-out: a retraining asked for on the replica runs on the worker and shows in the replica's GET /models", async () => {
  const registryDir = join(root, "models");
  await trainInto(registryDir, plantFrames(1200, 1), true);
  const env = (role: "ingest" | "worker", extra: Record<string, string> = {}) => ({
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: "ASKNOW",
    NATS_PARTITIONS: "2",
    MODEL_DIR: registryDir,
    DEFAULT_MODEL_NAME: NAME,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: "http://127.0.0.1:9",
    INGEST_WORKERS: "0",
    HISTORY_DIR: join(root, "history"),
    ADMIN_TOKEN: TOKEN,
    RETRAIN_EVERY_H: "0",
    RETRAIN_PROMOTE: "auto",
    ...extra,
  });
  const ingest = spawnEngine("node", env("ingest"));
  const worker = spawnEngine(
    "node",
    env("worker", { NATS_WORKER_ID: "now-a", DATA_DIR: join(root, "worker") }),
  );
  processes.push(ingest, worker);
  const [port] = await Promise.all(
    [ingest, worker].map(async (p) => {
      const port = await p.port();
      await waitReady(port);
      return port;
    }),
  );
  const ask = (body: unknown, headers: Record<string, string> = admin) =>
    fetch(`http://127.0.0.1:${port}/models/${NAME}/retrain`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
  const listed = async () =>
    v.parse(
      modelsResponseSchema,
      await (await fetch(`http://127.0.0.1:${port}/models`, { headers: admin })).json(),
    ).models[0];
  assert.deepEqual((await listed()).retrain, { every_h: 0, next_at: null });
  assert.equal((await ask({}, {})).status, 401);

  const res = await ask({ by: "ana", reason: "operating point moved" });
  assert.equal(res.status, 202);
  const { run } = v.parse(retrainResponseSchema, await res.json());
  assert.equal(run.worker, "now-a");
  assert.equal(run.outcome, "running");
  assert.deepEqual([run.requested?.by, run.requested?.reason], ["ana", "operating point moved"]);
  // One at a time: refused while the worker's run holds the lease.
  const again = await ask({});
  assert.equal(again.status, 409);
  assert.equal(((await again.json()) as { error: string }).error, "retrain_running");

  // Nothing was fed: the run is held for too little history, recorded like a scheduled one.
  const last = await waitFor(
    async () => {
      const l = (await listed()).retrain?.last;
      return l?.outcome === "decided" ? l : undefined;
    },
    "the worker's run to decide",
    60_000,
    200,
  );
  assert.equal(last.started_at, run.started_at);
  assert.equal(last.decision, "held");
  assert.match(last.reasons.join(), /too little history/);
  assert.deepEqual(last.requested, run.requested);
  assert.ok(
    worker
      .logs()
      .some(
        (l) =>
          l.msg === "requested retraining decided" && l.model === NAME && l.decision === "held",
      ),
  );
});
