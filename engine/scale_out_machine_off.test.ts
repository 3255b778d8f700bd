// A scale-out worker treats a stopped machine as the single process does, and the ingest replica lists it while a live worker does (real processes: a private nats-server, an ingest replica, workers; real HTTP alert sinks).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { parseModelMetadata } from "../contracts/model.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import {
  type EngineProcess,
  postFrameUntilTaken,
  spawnEngine,
  waitReady,
} from "./_test/engine_process.ts";
import { freeze } from "./_test/freeze.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { partitionOf, partitionSubject } from "./bus/partition_of.ts";

const STREAM = "MACHINEOFF";
const PARTITIONS = 2;
const T0 = Date.UTC(2026, 11, 3, 6);
// The incident ends only by the stop (or the test's end): no quiet windows within the test.
const INCIDENTS = { INCIDENT_QUIET_WINDOWS: "50" };

let model: ModelFixture;
let W = 0;
let server: NatsServer;
let nc: NatsConnection;
let single: { engine: TestEngine; sink: AlertSink };
let scaled: { ingest: number; worker: EngineProcess; workerPort: number; sink: AlertSink };
const processes: EngineProcess[] = [];

before(async () => {
  // As machine_off.test.ts: the machine runs while sensor_0_temp > 5 (about 10 while running);
  // a machine at rest sends zeros, which are no anomaly.
  [model, server] = await Promise.all([
    trainFixtureModel({ features: 12, name: "press", running: "sensor_0_temp>5" }),
    startNatsServer(),
  ]);
  W = parseModelMetadata(
    JSON.parse(await readFile(join(model.dir, "press.json"), "utf8")),
  ).window_size;
  nc = await connect({ servers: server.url, timeout: 2000 });
  const sinks = await Promise.all([startAlertSink(), startAlertSink()]);
  single = { engine: await startTestEngine(model, sinks[0], INCIDENTS), sink: sinks[0] };
  const ingest = spawnRole("ingest", sinks[1]);
  const worker = spawnRole("worker", sinks[1], { NATS_WORKER_ID: "off-a" });
  const [ingestPort, workerPort] = await Promise.all([ready(ingest), ready(worker)]);
  await waitFor(
    async () => (await statsOf(workerPort)).worker.partitions.length === PARTITIONS,
    "the worker to hold every partition",
    30_000,
    50,
  );
  scaled = { ingest: ingestPort, worker, workerPort, sink: sinks[1] };
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await single?.engine.stop();
  await single?.sink.close();
  await scaled?.sink.close();
  await nc?.close();
  await server?.remove();
  await model?.remove();
});

function spawnRole(
  role: "ingest" | "worker",
  sink: AlertSink,
  env: Record<string, string> = {},
): EngineProcess {
  const p = spawnEngine("node", {
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: String(PARTITIONS),
    NATS_LEASE_MS: "3000",
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "40",
    INGEST_WORKERS: "0",
    ...INCIDENTS,
    ...env,
  });
  processes.push(p);
  return p;
}

async function ready(p: EngineProcess): Promise<number> {
  const port = await p.port();
  await waitReady(port);
  return port;
}

// biome-ignore lint/suspicious/noExplicitAny: /stats as the roles serve it
async function statsOf(port: number): Promise<any> {
  return (await fetch(`http://127.0.0.1:${port}/stats`)).json();
}

const stoppedFrame = () => new Float32Array(12);
const normal = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => model.normalFrame(from + i + 1));
const spiked = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => model.spikedFrame(from + i + 1, 3));
const stopped = (n: number) => Array.from({ length: n }, stoppedFrame);

/** Frames `from ..` of `stream` to the single process and to the ingest replica, in order. */
async function feed(stream: string, frames: Float32Array[], from: number): Promise<void> {
  for (const [i, values] of frames.entries()) {
    const body = jsonFrame(model.featureNames, values, {
      stream_id: stream,
      timestamp: T0 + (from + i) * 1000,
    });
    assert.equal((await single.engine.post(body)).status, 202);
    await postFrameUntilTaken(scaled.ingest, body, `${stream} frame ${from + i}`);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: alert bodies as the sink received them
function alertsAt(sink: AlertSink, stream: string): any[] {
  return sink.requests.map((r) => JSON.parse(r.body)).filter((a) => a.stream_id === stream);
}
/** What two engines must agree on: each lifecycle step, its incident, the frame it came with, the sensors. */
const steps = (sink: AlertSink, stream: string) =>
  alertsAt(sink, stream).map((a) => ({
    event: a.event,
    incident_id: a.incident_id,
    incident_started_at: a.incident_started_at,
    frame_timestamp: a.frame_timestamp,
    num_anomalous_features: a.num_anomalous_features,
  }));
const events = (sink: AlertSink, stream: string) => alertsAt(sink, stream).map((a) => a.event);
/**
 * Waits until the partition of `stream` is committed up to its last frame on the bus (every
 * frame taken, a dropped one too); returns the partition.
 */
async function committed(stream: string, what: string): Promise<number> {
  const p = partitionOf(stream, PARTITIONS);
  const jsm = await jetstreamManager(nc);
  const last = await jsm.streams.getMessage(STREAM, {
    last_by_subj: partitionSubject(STREAM, p),
  });
  assert.ok(last, `${stream}'s partition holds frames`);
  const leases = await new Kvm(nc).open(`${STREAM}_leases`);
  await waitFor(
    async () => (await leases.get(`p.${p}`))?.json<{ committed: number }>().committed === last.seq,
    what,
    30_000,
    50,
  );
  return p;
}

/** Both engines' `/stats`: the single process's, then the worker's. */
const bothStats = () => Promise.all([single.engine.stats(), statsOf(scaled.workerPort)]);
/** The ingest replica's `machine_off` (what the console shows): every live worker's, gathered. */
const replicaOff = async (): Promise<{ stream_id: string; since: string }[]> =>
  (await statsOf(scaled.ingest)).machine_off;
const lists = (off: { stream_id: string }[], stream: string) =>
  off.some((m) => m.stream_id === stream);

test("a worker drops a stopped machine's windows, lists it as machine_off, resolves its incident and resumes a full window after the restart, as the single process does", async () => {
  // Running, then an upset that opens an incident in both.
  let t = 0;
  await feed("press-1", [...normal(t, 10), ...spiked(t + 10, 4)], t);
  t += 14;
  const scoredBefore = 14 - W + 1;
  await waitFor(
    async () => {
      const [a, b] = await bothStats();
      return a.frames.scored === scoredBefore && b.frames.scored === scoredBefore;
    },
    "the running windows scored by both",
    30_000,
    50,
  );
  await waitFor(
    () =>
      events(single.sink, "press-1").includes("opened") &&
      events(scaled.sink, "press-1").includes("opened"),
    "the incident opened in both",
    30_000,
    50,
  );

  // The machine stops: 8 frames of zeros. No window is scored; the incident resolves.
  await feed("press-1", stopped(8), t);
  t += 8;
  const [offA, offB] = await waitFor(
    async () => {
      const both = await bothStats();
      return both.every((s) => s.machine_off?.length === 1) ? both : undefined;
    },
    "the stream listed as machine off by both",
    30_000,
    50,
  );
  const since = new Date(T0 + 14 * 1000).toISOString();
  assert.deepEqual(offA.machine_off, [{ stream_id: "press-1", since }]);
  assert.deepEqual(offB.machine_off, offA.machine_off);
  // The replica the console reads gathers it from the worker's post.
  await waitFor(
    async () => JSON.stringify(await replicaOff()) === JSON.stringify(offA.machine_off),
    "the stream listed as machine off by the ingest replica",
    30_000,
    50,
  );
  await waitFor(
    () =>
      events(single.sink, "press-1").includes("resolved") &&
      events(scaled.sink, "press-1").includes("resolved"),
    "the incident resolved by the stop in both",
    30_000,
    50,
  );
  // Every stopped frame is committed: a dropped frame still moves the partition on.
  await committed("press-1", "the partition committed past the stopped frames");
  const [stillA, stillB] = await bothStats();
  assert.equal(stillA.frames.scored, scoredBefore, "the single process scored no stopped window");
  assert.equal(stillB.frames.scored, scoredBefore, "the worker scored no stopped window");
  assert.deepEqual(events(scaled.sink, "press-1"), ["opened", "resolved"], "a stop opens nothing");

  // Running again: the first window is scored once it holds W running frames.
  await feed("press-1", normal(t, W + 2), t);
  t += W + 2;
  const [afterA, afterB] = await waitFor(
    async () => {
      const both = await bothStats();
      return both.every((s) => s.frames.scored === scoredBefore + 3) ? both : undefined;
    },
    "scoring resumed in both after a full window of running frames",
    30_000,
    50,
  );
  assert.deepEqual(afterA.machine_off, []);
  assert.deepEqual(afterB.machine_off, []);
  await waitFor(
    async () => (await replicaOff()).length === 0,
    "the stream gone from the ingest replica's machine_off once it runs",
    30_000,
    50,
  );
  assert.deepEqual(events(single.sink, "press-1"), ["opened", "resolved"]);
  assert.deepEqual(steps(scaled.sink, "press-1"), steps(single.sink, "press-1"));
});

test("a worker fed an upset and the stop back to back resolves the incident after the upset's windows", async () => {
  // The worker frozen (well inside its lease) while they are fed: it reads the upset and the
  // stop from the bus in one round, and must still tell the alert path of the stop after the
  // upset's windows, as the single process does when they come one by one.
  await freeze(scaled.worker.child);
  try {
    await feed("press-2", [...normal(0, 10), ...spiked(10, 4), ...stopped(8)], 0);
  } finally {
    scaled.worker.child.kill("SIGCONT");
  }
  await waitFor(
    async () => (await statsOf(scaled.workerPort)).machine_off.length === 1,
    "press-2 listed as machine off",
    30_000,
    50,
  );
  // Every frame committed, so every alert of those frames is in the outbox: they are delivered.
  await committed("press-2", "press-2's partition committed");
  await waitFor(
    async () => (await statsOf(scaled.workerPort)).alerts.outbox === 0,
    "the worker's alerts delivered",
    30_000,
    50,
  );
  assert.deepEqual(events(scaled.sink, "press-2"), ["opened", "resolved"]);
});

test("a new owner replaying a stopped machine's frames lists it as off, repeats no alert and resumes a full window after the restart", async () => {
  // press-1 runs again since the first test; it stops once more, and its worker dies.
  const t = 14 + 8 + W + 2;
  await feed("press-1", stopped(6), t);
  await waitFor(
    async () =>
      (await statsOf(scaled.workerPort)).machine_off.some(
        (m: { stream_id: string }) => m.stream_id === "press-1",
      ),
    "press-1 off again",
    30_000,
    50,
  );
  const p = await committed("press-1", "the stop committed");
  await waitFor(
    async () => (await statsOf(scaled.workerPort)).alerts.outbox === 0,
    "the worker's alerts delivered",
    30_000,
    50,
  );
  // Posted by the worker before it dies: the replica lists press-1 from that post alone.
  await waitFor(
    async () => lists(await replicaOff(), "press-1"),
    "press-1 listed by the ingest replica",
    30_000,
    50,
  );
  const delivered = scaled.sink.requests.length;
  await scaled.worker.kill("SIGKILL");

  const next = spawnRole("worker", scaled.sink, { NATS_WORKER_ID: "off-b" });
  const nextPort = await ready(next);
  const off = await waitFor(
    async () => {
      const s = await statsOf(nextPort);
      const listed = s.machine_off.some((m: { stream_id: string }) => m.stream_id === "press-1");
      return s.worker.partitions.includes(p) && listed ? s : undefined;
    },
    "the new owner to replay press-1's stop",
    30_000,
    50,
  );
  assert.equal(off.frames.scored, 0, "replayed frames are not scored");
  const [entry] = off.machine_off.filter((m: { stream_id: string }) => m.stream_id === "press-1");
  assert.ok(entry, "press-1 listed as machine off by the new owner");
  // The first stopped frame it re-read (the replay point need not reach the stop's start).
  const since = Date.parse(entry.since);
  assert.ok(since >= T0 + t * 1000 && since < T0 + (t + 6) * 1000, entry.since);
  await waitFor(
    async () => lists(await replicaOff(), "press-1"),
    "press-1 still listed by the ingest replica after its worker died",
    30_000,
    50,
  );

  // Running again: the new owner scores once W running frames came in, and raises nothing.
  await feed("press-1", normal(t + 6, W + 2), t + 6);
  const resumed = await waitFor(
    async () => {
      const s = await statsOf(nextPort);
      return s.frames.scored === 3 ? s : undefined;
    },
    "the new owner to score a full window after the restart",
    30_000,
    50,
  );
  assert.ok(!resumed.machine_off.some((m: { stream_id: string }) => m.stream_id === "press-1"));
  assert.equal(scaled.sink.requests.length, delivered, "no alert repeated or raised");
  // The dead worker's post, which still lists press-1 as off, is never refreshed: it ages out
  // (three lease periods), and the replica lists press-1 no more.
  await waitFor(
    async () => !lists(await replicaOff(), "press-1"),
    "the dead worker's post aged out of the ingest replica's machine_off",
    30_000,
    100,
  );
  const board = await new Kvm(nc).open(`${STREAM}_machine_off`);
  assert.equal(await board.get("w.off-a"), null, "the dead worker's post is gone");
  assert.equal((await board.get("w.off-b"))?.operation, "PUT", "the live worker's stays");
});
