// A scale-out worker killed (kill -9) during a retraining (real processes, private nats-server): its child ends, and once it is back its run shows as failed, its scratch folder gone.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as v from "valibot";
import { modelsResponseSchema, retrainResponseSchema } from "../contracts/models_api.ts";
import { NAME, plantFrames, trainInto } from "../models/retrain/_test/plant_history.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { retrainChildOf, running } from "./_test/processes.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";

const TOKEN = "scale-out-retrain-killed-token";
const admin = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

let server: NatsServer;
let root: string;
const processes: EngineProcess[] = [];
/** The retraining child found, killed here should it outlive the test. */
let orphan: number | undefined;

before(async () => {
  [server, root] = await Promise.all([
    startNatsServer(),
    mkdtemp(join(tmpdir(), "scale-out-retrain-killed-")),
  ]);
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  if (orphan !== undefined && running(orphan)) process.kill(orphan, "SIGKILL");
  await server?.remove();
  await rm(root, { recursive: true, force: true });
});

test("scale-out: a worker killed mid-run leaves no child running, and back, records the run as failed and removes its scratch folder", async () => {
  const registryDir = join(root, "models");
  const history = join(root, "history");
  const scratch = join(root, "tmp");
  await trainInto(registryDir, plantFrames(1200, 1), true);
  // A chunk that is a pipe nobody writes: the run's read of the history waits on it for ever
  // (as on a stalled network mount), so the worker is surely killed mid-run.
  await mkdir(join(history, NAME, "worker-stalled"), { recursive: true });
  await mkdir(scratch);
  execFileSync("mkfifo", [join(history, NAME, "worker-stalled", "000000000000.chunk")]);
  const env = (role: "ingest" | "worker", extra: Record<string, string> = {}) => ({
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: "KILLED",
    NATS_PARTITIONS: "2",
    MODEL_DIR: registryDir,
    DEFAULT_MODEL_NAME: NAME,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: "http://127.0.0.1:9",
    INGEST_WORKERS: "0",
    HISTORY_DIR: history,
    ADMIN_TOKEN: TOKEN,
    RETRAIN_EVERY_H: "1",
    RETRAIN_PROMOTE: "auto",
    ...extra,
  });
  const workerEnv = env("worker", {
    NATS_WORKER_ID: "kw1",
    DATA_DIR: join(root, "worker"),
    TMPDIR: scratch,
  });
  const start = async (p: EngineProcess) => {
    processes.push(p);
    const port = await p.port();
    await waitReady(port);
    return port;
  };
  const [port] = await Promise.all([
    start(spawnEngine("node", env("ingest"))),
    start(spawnEngine("node", workerEnv)),
  ]);
  const worker = processes[1];
  const res = await fetch(`http://127.0.0.1:${port}/models/${NAME}/retrain`, {
    method: "POST",
    headers: admin,
    body: JSON.stringify({ by: "ana" }),
  });
  assert.equal(res.status, 202);
  const { run } = v.parse(retrainResponseSchema, await res.json());
  assert.equal(run.worker, "kw1");
  const child = await waitFor(
    () => retrainChildOf(worker.child.pid as number),
    "the worker's retraining child",
  );
  orphan = child;
  const folders = async () =>
    (await readdir(scratch)).filter((n) => n.startsWith(`retrain-${NAME}-`));
  assert.equal((await folders()).length, 1, "the run's scratch folder");

  await worker.kill("SIGKILL");
  // Nothing stopped it: it ends itself, its parent gone.
  await waitFor(() => !running(child), "the orphaned retraining child to end", 15_000, 100);

  // Back under the same id: its run is recorded as failed (the replica shows it), its folder gone.
  await start(spawnEngine("node", workerEnv));
  const listed = async () =>
    v.parse(
      modelsResponseSchema,
      await (await fetch(`http://127.0.0.1:${port}/models`, { headers: admin })).json(),
    ).models[0].retrain?.last;
  const last = await waitFor(
    async () => {
      const l = await listed();
      return l?.outcome === "failed" ? l : undefined;
    },
    "the replica to show the cut-short run as failed",
    30_000,
    200,
  );
  assert.equal(last.started_at, run.started_at);
  assert.equal(last.finished_at, null);
  assert.match(
    last.error ?? "",
    /^worker kw1 stopped during this run \(killed, restarted or cut off from NATS\), so its end was not seen/,
  );
  await waitFor(async () => (await folders()).length === 0, "the stale scratch folder to go");
});
