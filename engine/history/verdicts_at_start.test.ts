// A served model's training history index takes operators' verdicts from the engine's start, whether or not anything is scored (real processes: backend, engine, nats-server and scale-out roles).
import assert from "node:assert/strict";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type BackendProcess, startBackend } from "../../backend/_test/backend_process.ts";
import { jsonFrame } from "../_test/engine_harness.ts";
import {
  type EngineProcess,
  postFrameUntilTaken,
  spawnEngine,
  waitReady,
} from "../_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { frameUse, readHistory, readIndex, writerFolder } from "./mod.ts";

const SECOND = 1000;

let model: ModelFixture;
let backend: BackendProcess;
let root: string;
let nats: NatsServer | undefined;
const processes: EngineProcess[] = [];

before(async () => {
  [model, backend, root] = await Promise.all([
    trainFixtureModel({ features: 10, name: "verdicts_at_start" }),
    startBackend({ LOG_LEVEL: "info" }),
    mkdtemp(join(tmpdir(), "verdicts-at-start-")),
  ]);
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await backend?.service.stop("SIGKILL");
  await nats?.remove();
  await model?.remove();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Starts an engine process on `dataDir`, its alerts to and decisions from the backend; waits until it is ready. */
async function engine(dataDir: string) {
  const p = spawnEngine("node", {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: backend.base,
    DATA_DIR: dataDir,
    DECISIONS_POLL_S: "1",
    HISTORY_EVERY_N: "1",
    HISTORY_RUN_FRAMES: "120",
    INCIDENT_QUIET_WINDOWS: "3",
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "50",
  });
  processes.push(p);
  const port = await p.port();
  await waitReady(port);
  return { process: p, port };
}

/** Stops an engine gracefully and waits for it. */
async function stop(p: EngineProcess) {
  p.child.kill("SIGTERM");
  assert.equal(await p.exited, 0);
}

/** An operator calls incident `incidentId` a false alarm. */
async function judge(incidentId: string) {
  const res = await fetch(`${backend.base}/api/v1/incidents/${incidentId}/verdict`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ verdict: "false_positive", by: "Ana" }),
  });
  assert.equal(res.status, 201, await res.text());
}

/** Frames the engine scored so far (its `/stats`). */
async function scored(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/stats`);
  return ((await res.json()) as { frames: { scored: number } }).frames.scored;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

test("an engine writes its served model's history index at start, before any frame is scored", async () => {
  const dataDir = join(root, "fresh");
  const dir = join(dataDir, "history", model.name);
  assert.equal(await exists(dir), false, "no history folder before the engine starts");
  const { process: p, port } = await engine(dataDir);
  await waitFor(() => exists(join(dir, "index.json")), "index.json written at start");
  assert.equal(await scored(port), 0);
  const index = await readIndex(dir, model.name, undefined, false);
  assert.deepEqual(index.incidents, {});
  await stop(p);
  // Nothing kept, so no chunk: the folder holds the index alone.
  const read = await readHistory(dir, { model: model.name, featureNames: model.featureNames });
  assert.equal(read.chunks, 0);
  assert.equal(read.frames.length, 0);
});

test("after a restart, an operator's verdict reaches index.json with no frame scored since", async () => {
  const dataDir = join(root, "restart");
  const dir = join(dataDir, "history", model.name);

  // 1. An upset on "inc": one incident, alerted to the backend, its frames recorded unjudged.
  const first = await engine(dataDir);
  const t0 = Math.floor(Date.now() / SECOND) * SECOND - 3600 * SECOND;
  const kinds = `${"n".repeat(10)}${"s".repeat(10)}${"n".repeat(15)}`;
  for (const [i, k] of [...kinds].entries()) {
    const values = k === "s" ? model.spikedFrame(i, 3) : model.normalFrame(i);
    const res = await fetch(`http://127.0.0.1:${first.port}/data-enqueue`, {
      method: "POST",
      body: jsonFrame(model.featureNames, values, { stream_id: "inc", timestamp: t0 + i * SECOND }),
    });
    await res.arrayBuffer();
    assert.equal(res.status, 202);
  }
  const [incidentId, unjudged] = await waitFor(async () => {
    const entries = Object.entries((await readIndex(dir, model.name, undefined, false)).incidents);
    return entries.length === 1 ? entries[0] : undefined;
  }, "the incident in index.json");
  assert.equal(unjudged.verdict, null);
  await waitFor(
    async () => (await fetch(`${backend.base}/api/v1/incidents/${incidentId}`)).status === 200,
    "the incident's alerts to reach the backend",
  );
  await stop(first.process);

  // 2. The engine starts again; the plant is stopped, so nothing is scored. An operator calls
  // the incident a false alarm: the restarted engine pulls the verdict into the index.
  const second = await engine(dataDir);
  await judge(incidentId);
  await waitFor(
    async () =>
      (await readIndex(dir, model.name, undefined, false)).incidents[incidentId]?.verdict ===
      "false_positive",
    "the verdict in index.json",
    15_000,
    50,
  );
  assert.equal(await scored(second.port), 0, "no frame scored since the restart");
  await stop(second.process);

  // Retraining reads the index: the incident's frames are usable training data now.
  const read = await readHistory(dir, { model: model.name, featureNames: model.featureNames });
  const tagged = read.frames.filter((f) => f.incident === incidentId);
  assert.ok(tagged.length >= 10, `${tagged.length} frames of the incident recorded`);
  assert.deepEqual(
    tagged.filter((f) => frameUse(f, read.index).why !== "false_positive").map((f) => f.timestamp),
    [],
  );
});

test("a restarted scale-out worker takes a verdict into its own folder's index with no frame scored since", async () => {
  nats = await startNatsServer();
  const WORKER = "vs-a";
  const history = join(root, "scale-out-history");
  const workerData = join(root, "scale-out-worker");
  const dir = join(history, model.name, writerFolder(WORKER));
  const role = (kind: "ingest" | "worker") => {
    const p = spawnEngine("node", {
      ENGINE_ROLE: kind,
      FRAME_BUS: "nats",
      NATS_URL: (nats as NatsServer).url,
      NATS_STREAM: "VERDICTS_AT_START",
      NATS_PARTITIONS: "1",
      NATS_LEASE_MS: "3000",
      MODEL_DIR: model.dir,
      DEFAULT_MODEL_NAME: model.name,
      DEFAULT_DEVICE: "cpu",
      NESTJS_URL: backend.base,
      INGEST_WORKERS: "0",
      ...(kind === "worker"
        ? {
            NATS_WORKER_ID: WORKER,
            DATA_DIR: workerData,
            HISTORY_DIR: history,
            HISTORY_EVERY_N: "1",
            DECISIONS_POLL_S: "1",
            INCIDENT_CONFIRM_K: "2",
            INCIDENT_CONFIRM_N: "3",
            INCIDENT_QUIET_WINDOWS: "3",
          }
        : {}),
    });
    processes.push(p);
    return p;
  };
  const ready = async (p: EngineProcess) => {
    const port = await p.port();
    await waitReady(port);
    return port;
  };
  const ingest = role("ingest");
  const worker = role("worker");
  const [port, workerPort] = await Promise.all([ready(ingest), ready(worker)]);
  const partitions = async (at: number) =>
    (
      (await (await fetch(`http://127.0.0.1:${at}/stats`)).json()) as {
        worker: { partitions: number[] };
      }
    ).worker.partitions.length;
  await waitFor(
    async () => (await partitions(workerPort)) === 1,
    "the worker's partition",
    30_000,
    50,
  );

  // 1. An upset on "line": one incident, recorded in the worker's folder unjudged.
  const t0 = Math.floor(Date.now() / SECOND) * SECOND - 3 * 3600 * SECOND;
  const kinds = `${"n".repeat(20)}${"s".repeat(5)}${"n".repeat(20)}`;
  for (const [i, k] of [...kinds].entries()) {
    const values = k === "s" ? model.spikedFrame(i, 3) : model.normalFrame(i);
    const body = jsonFrame(model.featureNames, values, {
      stream_id: "line",
      timestamp: t0 + i * SECOND,
    });
    await postFrameUntilTaken(port, body, `frame ${i}`);
  }
  const [incidentId] = await waitFor(
    async () => {
      const entries = Object.entries(
        (await readIndex(dir, model.name, undefined, false)).incidents,
      );
      return entries.length === 1 ? entries[0] : undefined;
    },
    "the incident in the worker's index",
    30_000,
    100,
  );
  await waitFor(
    async () => (await fetch(`${backend.base}/api/v1/incidents/${incidentId}`)).status === 200,
    "the incident's alerts to reach the backend",
    30_000,
    100,
  );
  await stop(worker);

  // 2. The worker starts again (same id, same folders); no frame comes. The verdict given now
  // reaches its index.
  const again = role("worker");
  const againPort = await ready(again);
  await judge(incidentId);
  await waitFor(
    async () =>
      (await readIndex(dir, model.name, undefined, false)).incidents[incidentId]?.verdict ===
      "false_positive",
    "the verdict in the worker's index",
    15_000,
    50,
  );
  assert.equal(await scored(againPort), 0, "no frame scored since the restart");
  await stop(again);
  await stop(ingest);
});
