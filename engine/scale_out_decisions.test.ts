// Scale-out workers learn operators' decisions: a verdict lets an incident's frames back into the history, a silence keeps frames out, a stopped machine's are never scored (real processes: backend, nats-server, ingest replica, worker).
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ownDatabase } from "../backend/_test/own_database.ts";
import { NODE_TS, type ServiceProcess, spawnService } from "../backend/_test/spawn_service.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import {
  type EngineProcess,
  postFrameUntilTaken,
  spawnEngine,
  waitReady,
} from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { decisionsWriterFolder } from "./decisions/mod.ts";
import {
  frameUse,
  type HistoryIndex,
  readHistory,
  readIndex,
  writerFolder,
} from "./history/mod.ts";

const WORKER = "dw-a";
const SECOND = 1000;
// Frame time a few hours back: inside the backend's retention and the silence, all in the past.
const T0 = Math.floor(Date.now() / SECOND) * SECOND - 3 * 3600 * SECOND;

let server: NatsServer;
let model: ModelFixture;
let backend: ServiceProcess;
let database: { env: Record<string, string>; drop(): Promise<void> } | undefined;
let api: string;
let root: string;
const processes: EngineProcess[] = [];

before(async () => {
  database = await ownDatabase("scale_out_decisions");
  backend = spawnService([...NODE_TS, "backend/main.ts"], {
    ...database.env,
    HOST: "127.0.0.1",
    PORT: "0",
    SIMULATOR_RATE_HZ: "0",
    LOG_LEVEL: "info",
  });
  [server, model, root] = await Promise.all([
    startNatsServer(),
    // The machine runs while sensor_0_temp > 5 (it reads about 10 while running).
    trainFixtureModel({ features: 12, name: "press", running: "sensor_0_temp>5" }),
    mkdtemp(join(tmpdir(), "scale-out-decisions-")),
  ]);
  const listening = await backend.waitForLog((l) => l.msg === "backend listening", 60_000);
  api = `http://127.0.0.1:${listening.port}/api/v1`;
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await backend?.stop("SIGKILL");
  await database?.drop();
  await server?.remove();
  await model?.remove();
  if (root) await rm(root, { recursive: true, force: true });
});

/** A JSON request to the backend's API; rejects unless it answers `expect`. */
async function call(path: string, method: string, body: unknown, expect: number) {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, expect, await res.clone().text());
  return res.json();
}

/** Posts frames `from ..` of `stream` one after the other, waiting out back-pressure (429). */
async function feed(port: number, stream: string, frames: Float32Array[], from: number) {
  for (const [i, values] of frames.entries()) {
    const body = jsonFrame(model.featureNames, values, {
      stream_id: stream,
      timestamp: T0 + (from + i) * SECOND,
    });
    await postFrameUntilTaken(port, body, `${stream} frame ${from + i}`);
  }
}

const normal = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => model.normalFrame(from + i));

test("a worker pulls verdicts and silences: a false positive's frames become usable, a silenced stream and a stopped machine's frames are left out", async () => {
  const history = join(root, "history");
  const dataDir = join(root, "worker-data");
  const modelDir = join(history, model.name);
  const workerDir = join(modelDir, writerFolder(WORKER));
  const index = () => readIndex(workerDir, model.name);
  const read = () => readHistory(modelDir, { model: model.name });

  // A silence on the whole of stream "kiln", made before the worker starts: every pull it makes
  // carries it.
  await call(
    "/silences",
    "POST",
    {
      matchers: { stream: "kiln" },
      starts_at: new Date(T0 - 60 * SECOND).toISOString(),
      ends_at: new Date(Date.now() + 3600 * SECOND).toISOString(),
      reason: "kiln relined",
      created_by: "Ana",
    },
    201,
  );

  const env = (role: "ingest" | "worker", extra: Record<string, string> = {}) => ({
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: "DECISIONS",
    NATS_PARTITIONS: "2",
    NATS_LEASE_MS: "3000",
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: api.replace(/\/api\/v1$/, ""),
    INGEST_WORKERS: "0",
    ...extra,
  });
  const spawnRole = (role: "ingest" | "worker", extra?: Record<string, string>) => {
    const p = spawnEngine("node", env(role, extra));
    processes.push(p);
    return p;
  };
  const ingest = spawnRole("ingest");
  const worker = spawnRole("worker", {
    NATS_WORKER_ID: WORKER,
    DATA_DIR: dataDir,
    HISTORY_DIR: history,
    HISTORY_EVERY_N: "1",
    // Silences and verdicts pulled every second from the backend the alerts go to.
    DECISIONS_POLL_S: "1",
    ALERT_CONCURRENCY: "1",
    INCIDENT_CONFIRM_K: "2",
    INCIDENT_CONFIRM_N: "3",
    INCIDENT_QUIET_WINDOWS: "3",
    // Alerts the downed backend never took stay in the outbox: the stop waits no longer.
    SHUTDOWN_TIMEOUT_MS: "3000",
  });
  const [port, workerPort] = await Promise.all(
    [ingest, worker].map(async (p) => {
      const port = await p.port();
      await waitReady(port);
      return port;
    }),
  );
  await waitFor(
    async () =>
      (await (await fetch(`http://127.0.0.1:${workerPort}/stats`)).json()).worker.partitions
        .length === 2,
    "the worker to hold both partitions",
    30_000,
    50,
  );

  // 1. "line-1": normal, an upset of 5 frames (three sensors far out), normal again: one incident,
  // delivered to the backend; the worker records its frames tagged, unjudged.
  const upset = Array.from({ length: 5 }, (_, i) => model.spikedFrame(20 + i, 3));
  await feed(port, "line-1", [...normal(0, 20), ...upset, ...normal(25, 20)], 0);
  const [incidentId, tagged] = await waitFor(
    async () => {
      const entries = Object.entries((await index()).incidents);
      return entries.length === 1 && entries[0][1].stream === "line-1" ? entries[0] : undefined;
    },
    "the worker's index to list line-1's incident",
    30_000,
    100,
  );
  assert.equal(tagged.verdict, null);
  assert.ok(tagged.frames >= 5, `${tagged.frames} tagged frames`);
  const ofIncident = (frames: Awaited<ReturnType<typeof read>>["frames"]) =>
    frames.filter((f) => f.incident === incidentId);
  // The index counts frames the recorder still holds (their windows' membership was being
  // settled): they reach the files at a later flush.
  const unjudged = await waitFor(
    async () => {
      const got = await read();
      return ofIncident(got.frames).length >= tagged.frames ? got : undefined;
    },
    "the tagged frames to be read back",
    30_000,
    100,
  );
  assert.ok(
    ofIncident(unjudged.frames).every(
      (f) => frameUse(f, unjudged.index).why === "incident_unjudged",
    ),
  );

  // 2. An operator calls it a false alarm; the worker pulls the verdict into its index.
  await waitFor(
    async () => (await fetch(`${api}/incidents/${incidentId}`)).status === 200,
    "the worker's alerts to reach the backend",
    30_000,
    100,
  );
  await call(
    `/incidents/${incidentId}/verdict`,
    "POST",
    { verdict: "false_positive", by: "Ana" },
    201,
  );
  const judged = await waitFor(
    async () => {
      const i = await index();
      return i.incidents[incidentId]?.verdict === "false_positive" ? i : undefined;
    },
    "the verdict in the worker's index",
    30_000,
    100,
  );
  assert.ok(judged.incidents[incidentId].frames >= tagged.frames);
  const letInRead = await read();
  const letIn = ofIncident(letInRead.frames);
  assert.ok(letIn.length >= tagged.frames, `${letIn.length} tagged frames read back`);
  assert.ok(
    letIn.every((f) => {
      const use = frameUse(f, letInRead.index);
      return use.use && use.why === "false_positive";
    }),
  );
  // The last good copy lies in the worker's own folder of DATA_DIR/decisions.
  const copies = join(dataDir, "decisions", decisionsWriterFolder(WORKER));
  assert.deepEqual((await readdir(copies)).sort(), ["silences.json", "verdicts.json"]);
  assert.deepEqual(await readdir(join(dataDir, "decisions")), [decisionsWriterFolder(WORKER)]);
  const verdicts = JSON.parse(await readFile(join(copies, "verdicts.json"), "utf8"));
  assert.equal(verdicts.body.verdicts[0].incident_id, incidentId);

  // 3. A pull after the verdict's carried the silence too (it was made before the worker
  // started): "kiln" is left out whole; "press" stops for 10 frames, which are never scored (as
  // in the single process), so never recorded nor counted.
  const KILN = 30;
  const stopped = Array.from({ length: 10 }, () => new Float32Array(model.featureNames.length));
  await Promise.all([
    feed(port, "kiln", normal(0, KILN), 0),
    feed(port, "press", [...normal(0, 15), ...stopped, ...normal(25, 15)], 0),
  ]);
  await waitFor(
    async () => {
      const e = (await index()).excluded;
      // Kiln's first window_size - 1 frames make no window: nothing asks about them.
      return (e.silenced ?? 0) >= KILN - 10 ? e : undefined;
    },
    "the worker's index to count the silenced frames",
    30_000,
    100,
  );
  const final = await waitFor(
    async () => {
      const r = await read();
      // Press's frames after the restart, up to those waiting for later windows.
      return r.frames.some((f) => f.streamId === "press" && f.timestamp >= T0 + 30 * SECOND)
        ? r
        : undefined;
    },
    "press's frames after the restart to be recorded",
    30_000,
    100,
  );
  assert.deepEqual(
    final.frames.filter((f) => f.streamId === "kiln"),
    [],
    "no frame of the silenced stream",
  );
  const press = final.frames.filter((f) => f.streamId === "press");
  assert.ok(press.length > 0);
  assert.ok(
    press.every((f) => f.values[0] > 5),
    "no frame of the stopped machine",
  );
  assert.ok(press.every((f) => f.timestamp < T0 + 15 * SECOND || f.timestamp >= T0 + 25 * SECOND));
  // Written with press's frames after the restart: a stopped frame was never asked about.
  assert.equal((await index()).excluded.machine_off, undefined, "no stopped frame scored");

  // 4. The backend goes down: scoring and recording go on, the verdict held from the last copy.
  assert.equal(await backend.stop("SIGKILL"), null);
  await feed(port, "line-1", normal(45, 20), 45);
  await waitFor(
    async () => (await read()).frames.some((f) => f.timestamp === T0 + 50 * SECOND),
    "line-1's frames fed after the outage to be recorded",
    30_000,
    100,
  );
  const held: HistoryIndex = await index();
  assert.equal(held.incidents[incidentId].verdict, "false_positive");

  // A graceful stop ends the pulls with the rest of the worker.
  assert.equal(await worker.kill("SIGTERM"), 0);
  assert.ok(worker.logs().some((l) => l.msg === "inference worker stopped"));
});
