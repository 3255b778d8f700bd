// Retraining under scale-out: two workers record the history, one retrains per interval (a KV lease), the promoted version reaches every process through the registry (real processes, private nats-server).
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import * as v from "valibot";
import { modelsResponseSchema, type RetrainRun } from "../contracts/models_api.ts";
import { NAME, plantFrames, T0, trainInto } from "../models/retrain/_test/plant_history.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import {
  type EngineProcess,
  postFrameUntilTaken,
  spawnEngine,
  waitReady,
} from "./_test/engine_process.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { readHistory, writerFolder } from "./history/mod.ts";
import { NatsModelRegistry } from "./infer/nats_registry.ts";
import { type RetrainRecord, readRetrainRecord } from "./retrain/mod.ts";

const STREAM = "RETRAIN";
/** Rounds 14.4 s apart on each worker: several rounds within the test, one run per interval. */
const EVERY_H = 0.004;
const EVERY_MS = EVERY_H * 3_600_000;
const STREAMS = ["line-1", "line-2", "line-3", "line-4"];
const PER_STREAM = 500;
const FEATURES = Array.from({ length: 8 }, (_, i) => `feature_${i}`);

let server: NatsServer;
let sink: AlertSink;
let nc: NatsConnection;
let root: string;
const processes: EngineProcess[] = [];

before(async () => {
  [server, sink, root] = await Promise.all([
    startNatsServer(),
    startAlertSink(),
    mkdtemp(join(tmpdir(), "scale-out-retrain-")),
  ]);
  nc = await connect({ servers: server.url });
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await nc?.close();
  await server?.remove();
  await sink?.close();
  await rm(root, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: JSON answers as the roles serve them
async function getJson(port: number, path: string): Promise<any> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).json();
}

/** Posts a stream's frames one after the other, waiting out back-pressure (429). */
async function feed(port: number, stream: string, frames: Float32Array[], offset: number) {
  for (const [i, values] of frames.entries()) {
    const body = jsonFrame(FEATURES, values, {
      stream_id: stream,
      timestamp: T0 + (offset + i) * 1000,
    });
    await postFrameUntilTaken(port, body, `${stream} frame ${i}`);
  }
}

test("scale-out: one worker retrains per interval, and the promoted version reaches every worker and replica", async (t) => {
  const registryDir = join(root, "models");
  const history = join(root, "history");
  const { meta: first } = await trainInto(registryDir, plantFrames(1200, 1), true);

  // Every write of the shared retraining record, as it happens.
  const registry = await NatsModelRegistry.open(nc, STREAM);
  const records: RetrainRecord[] = [];
  const watch = await registry.kv.watch({ key: `retrain.${NAME}` });
  void (async () => {
    for await (const e of watch) if (e.operation === "PUT") records.push(e.json<RetrainRecord>());
  })();

  const env = (role: "ingest" | "worker", extra: Record<string, string> = {}) => ({
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: "4",
    NATS_LEASE_MS: "3000",
    MODEL_DIR: registryDir,
    DEFAULT_MODEL_NAME: NAME,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    INGEST_WORKERS: "0",
    // Both workers record into one HISTORY_DIR, each in its folder; the retrainer reads both.
    HISTORY_DIR: history,
    HISTORY_EVERY_N: "1",
    INCIDENT_CONFIRM_K: "2",
    INCIDENT_CONFIRM_N: "3",
    INCIDENT_QUIET_WINDOWS: "3",
    RETRAIN_EVERY_H: String(EVERY_H),
    RETRAIN_PROMOTE: "auto",
    ...extra,
  });
  const spawnRole = (role: "ingest" | "worker", extra?: Record<string, string>) => {
    const p = spawnEngine("node", env(role, extra));
    processes.push(p);
    return p;
  };
  const ingest = spawnRole("ingest");
  const workers = [
    spawnRole("worker", { NATS_WORKER_ID: "rt-a", DATA_DIR: join(root, "worker-a") }),
    spawnRole("worker", { NATS_WORKER_ID: "rt-b", DATA_DIR: join(root, "worker-b") }),
  ];
  const [port, ...workerPorts] = await Promise.all(
    [ingest, ...workers].map(async (p) => {
      const port = await p.port();
      await waitReady(port);
      return port;
    }),
  );
  await waitFor(
    async () => {
      const held = await Promise.all(
        workerPorts.map(async (p) => (await getJson(p, "/stats")).worker.partitions.length),
      );
      return held.every((n) => n > 0) && held[0] + held[1] === 4;
    },
    "both workers to hold partitions",
    30_000,
  );

  // The plant's day 2, a quarter per stream; the frames spread over both workers' partitions.
  const frames = plantFrames(PER_STREAM * STREAMS.length, 2);
  const fedAt = performance.now();
  await Promise.all(
    STREAMS.map((s, k) =>
      feed(port, s, frames.slice(k * PER_STREAM, (k + 1) * PER_STREAM), k * PER_STREAM),
    ),
  );
  const fedMs = performance.now() - fedAt;
  // Of each stream, the first window_size - 1 frames make no window and the last ones wait for a
  // later window (their incident membership): 492 of 500 at most. A partition handed over
  // mid-stream (a lease lost on a loaded host) also costs its streams the few frames the old
  // owner held back: most of each stream is asked for, from both writers' folders.
  const recorded = await waitFor(
    async () => {
      const read = await readHistory(join(history, NAME), { model: NAME });
      const per = STREAMS.map((s) => read.frames.filter((f) => f.streamId === s).length);
      return per.every((n) => n >= PER_STREAM - 50) ? read : undefined;
    },
    "both workers' histories to hold the streams",
    60_000,
    200,
  );
  const times = recorded.frames.map((f) => `${f.streamId}@${f.timestamp}`);
  assert.equal(new Set(times).size, times.length, "every frame recorded once");
  assert.equal(new Set(recorded.frames.map((f) => f.session)).size, 2, "two recorders");
  assert.deepEqual((await readdir(join(history, NAME))).sort(), [
    writerFolder("rt-a"),
    writerFolder("rt-b"),
  ]);

  // A round trains on the history, the gate promotes, the lease holder activates the candidate.
  const promoted = await waitFor(
    () => records.find((r) => r.last.decision === "promoted" && r.last.activated)?.last,
    "a scheduled run to promote and activate a candidate",
    240_000,
    200,
  );
  const version = promoted.candidate_version as string;
  assert.notEqual(version, first.version);
  // Every worker loads it and scores with it; the replica stamps it.
  for (const p of workerPorts) {
    await waitFor(
      async () => (await getJson(p, "/stats")).models[0].active_version === version,
      `the worker on port ${p} to serve ${version}`,
      30_000,
      100,
    );
  }
  const listed = v.parse(modelsResponseSchema, await getJson(port, "/models")).models[0];
  assert.equal(listed.active_version, version);
  assert.ok(listed.versions.includes(version));
  assert.equal(listed.retrain?.every_h, EVERY_H);
  assert.equal(listed.retrain?.last_promoted?.candidate_version, version);
  assert.equal(listed.retrain?.last_promoted?.worker, promoted.worker);
  // The gate's report lies beside the version, saying what happened in the shared registry.
  const report = (await registry.report(NAME, version)) as Record<string, unknown>;
  assert.equal(report.decision, "promoted");
  assert.equal(report.candidate_version, version);
  assert.equal((report.activated as { version: string }).version, version);
  assert.equal(report.worker, promoted.worker);
  assert.equal((report.data as { history_dir: string }).history_dir, join(history, NAME));
  // The replica serves it to the console, from the shared registry.
  const served = await getJson(port, `/models/${NAME}/retrains/${encodeURIComponent(version)}`);
  assert.equal(served.decision, "promoted");
  assert.equal(served.candidate_version, version);
  assert.equal(served.worker, promoted.worker);
  const missing = await fetch(
    `http://127.0.0.1:${port}/models/${NAME}/retrains/${encodeURIComponent(listed.versions.find((x) => x !== version) ?? "none")}`,
  );
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: string }).error, "report_not_found");

  // Stop the workers (a run in progress is stopped and recorded), then look at every run.
  await Promise.all(workers.map((w) => w.kill("SIGTERM")));
  const latest = JSON.stringify(await readRetrainRecord(registry.kv, NAME));
  await waitFor(
    () => JSON.stringify(records.at(-1)) === latest,
    "the watch to see the last record",
  );
  const runs = new Map<string, RetrainRun>();
  for (const r of records) runs.set(`${r.last.worker}@${r.last.started_at}`, r.last);
  const finished = [...runs.values()]
    .filter((r) => r.finished_at !== null)
    .sort((a, b) => a.started_at.localeCompare(b.started_at));
  // One run at a time, the next no sooner than an interval after the previous one ended.
  for (let i = 1; i < finished.length; i++) {
    const gap =
      Date.parse(finished[i].started_at) - Date.parse(finished[i - 1].finished_at as string);
    assert.ok(gap >= EVERY_MS, `run ${i} started ${gap} ms after run ${i - 1} ended`);
  }
  // Each worker ran its rounds; the rounds that did not run here were skipped, each run logged once.
  const said = (msg: string) =>
    workers.map((w) => w.logs().filter((l) => l.msg === msg && l.model === NAME).length);
  const started = said("scheduled retraining started");
  const skipped = said("scheduled retraining skipped");
  const ran = said("scheduled retraining decided").map(
    (n, i) => n + said("scheduled retraining failed; scoring goes on with the active version")[i],
  );
  assert.ok(
    started.every((n) => n >= 1),
    `rounds per worker: ${started}`,
  );
  assert.deepEqual(
    started.map((n, i) => n - skipped[i]),
    ran,
  );
  assert.equal(ran[0] + ran[1], finished.length, "every run recorded once");
  // The other worker's round met the promoting run's lease, or its record within the interval.
  const other = workers[promoted.worker === "rt-a" ? 1 : 0];
  const why = other
    .logs()
    .filter((l) => l.msg === "scheduled retraining skipped")
    .map((l) => String(l.reason));
  assert.ok(
    why.some((r) => r.includes(promoted.worker as string)),
    `the other worker skipped its round because of ${promoted.worker}'s: ${why}`,
  );
  // One version published per run that trained a candidate, activated only by the promotions.
  const candidates = finished.filter((r) => r.candidate_version).map((r) => r.candidate_version);
  assert.equal(new Set(candidates).size, candidates.length);
  assert.deepEqual((await registry.versions(NAME)).sort(), [first.version, ...candidates].sort());
  const byRetrain = (await registry.activations(NAME)).filter((a) => a.by === "retrain");
  assert.deepEqual(
    byRetrain.map((a) => a.version),
    finished.filter((r) => r.activated).map((r) => r.candidate_version),
  );
  await watch.stop();
  const sampled = finished.map((r) => `${r.worker}: ${r.decision ?? r.outcome}`).join(", ");
  t.diagnostic(`fed ${frames.length} frames in ${Math.round(fedMs)} ms; runs: ${sampled}`);
});
