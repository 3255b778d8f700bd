// Scale-out against real NATS JetStream: ingest replicas and inference workers as real processes.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame } from "../_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "../_test/engine_process.ts";
import { freeze } from "../_test/freeze.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./_test/nats_server.ts";
import { startTcpProxy } from "./_test/tcp_proxy.ts";
import { partitionOf } from "./partition_of.ts";
import { windowAlertId } from "./window_alert_id.ts";

const SHARED_NATS = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const PARTITIONS = 8;
const BASE_TS = Date.UTC(2026, 0, 1);

let model: ModelFixture;
let sink: AlertSink;
let windowSize = 0;
let version = "";
const processes: EngineProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  // Two drifting sensors: workers keep running levels, and a new owner rebuilds them on replay.
  model = await trainFixtureModel({ features: 12, name: "bus_fixture", drifting: 2 });
  const meta = JSON.parse(await readFile(join(model.dir, `${model.name}.json`), "utf8"));
  windowSize = meta.window_size;
  version = meta.version;
  sink = await startAlertSink();
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await sink?.close();
  await model?.remove();
});

/**
 * A fresh stream name per test, deleted afterwards with every bucket the roles made under it
 * (`KV_<name>_*`, `OBJ_<name>_*`): some tests run on the machine's own NATS server.
 */
function streamName(url: string): string {
  const name = `T${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  cleanups.push(async () => {
    const nc = await connect({ servers: url, timeout: 2000, reconnect: false });
    const jsm = await jetstreamManager(nc);
    const ours: string[] = [];
    for await (const stream of jsm.streams.names()) {
      if (stream === name || stream.includes(`_${name}_`)) ours.push(stream);
    }
    for (const stream of ours) await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  });
  return name;
}

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "worker-data-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function spawnRole(
  role: "ingest" | "worker" | "all",
  nats: { url: string; stream: string },
  env: Record<string, string> = {},
  runtime: "node" | "deno" = "node",
): EngineProcess {
  const p = spawnEngine(runtime, {
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: nats.url,
    NATS_STREAM: nats.stream,
    NATS_PARTITIONS: String(PARTITIONS),
    NATS_LEASE_MS: "1500",
    // Long enough that a busy host's slow acknowledgement is no 503 (then a "duplicate" retry);
    // the outage test sets its own.
    NATS_PUBLISH_TIMEOUT_MS: "5000",
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    RETRY_BASE_MS: "5",
    RETRY_MAX_MS: "40",
    ALERT_TIMEOUT_MS: "1000",
    INGEST_WORKERS: "0",
    // One alert per window: every window position is visible at the sink.
    ALERT_MODE: "frame",
    // The per-batch "batch scored" lines say which worker scored which frames.
    LOG_LEVEL: "debug",
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
async function stats(port: number): Promise<any> {
  return (await fetch(`http://127.0.0.1:${port}/stats`)).json();
}

/** An anomalous frame (every feature spiked), so every window of it raises an alert. */
/**
 * Frame `i` of `stream`, every sensor spiked but the drifting ones (a spike of 1000 would move
 * their running levels for some 30 frames, and the incident test waits for quiet windows).
 */
function frameBody(stream: string, i: number): string {
  const spiked = model.featureNames.length - model.drifting.length;
  return jsonFrame(model.featureNames, model.spikedFrame(i, spiked), {
    stream_id: stream,
    timestamp: BASE_TS + i * 1000,
  });
}

function post(port: number, body: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/data-enqueue`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });
}

/** Sends until some replica answers 202 (a client's retry), trying the replicas in turn. */
async function deliver(ports: number[], body: string, first = 0): Promise<string> {
  let k = first;
  return waitFor(
    async () => {
      const port = ports[k++ % ports.length];
      try {
        const res = await post(port, body);
        const json = await res.json();
        if (res.status === 202) return json.status as string;
        assert.ok(
          [429, 503].includes(res.status),
          `unexpected ${res.status} ${JSON.stringify(json)}`,
        );
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
      }
      return undefined;
    },
    "a replica to accept the frame",
    30_000,
    20,
  );
}

/** The alert ids every window position of `streams` x `count` frames must produce. */
function expectedIds(streams: string[], count: number): Map<string, string> {
  const ids = new Map<string, string>();
  for (const s of streams) {
    for (let i = windowSize - 1; i < count; i++) {
      ids.set(windowAlertId(s, BASE_TS + i * 1000, model.name, version), `${s}@${i}`);
    }
  }
  return ids;
}

/** Waits for an alert for every expected position; on a timeout the error lists what is missing. */
async function allAlerts(expected: Map<string, string>, what: string, workers: EngineProcess[]) {
  try {
    await waitFor(
      () => [...expected.keys()].every((id) => sink.delivered.has(id)),
      what,
      60_000,
      50,
    );
  } catch (error) {
    const missing = [...expected].filter(([id]) => !sink.delivered.has(id)).map(([, at]) => at);
    const logs = workers.map((w) =>
      w
        .logs()
        .filter((l) => l.msg !== "batch scored")
        .slice(-15)
        .map((l) => JSON.stringify(l).slice(0, 300))
        .join("\n"),
    );
    throw new Error(
      `${(error as Error).message}; missing ${missing.length}: ${missing.slice(0, 20)}\n${logs.join("\n---\n")}`,
    );
  }
}

function storedAlerts(prefix: string) {
  const byId = new Map<string, { stream_id: string; frame_timestamp: string }>();
  for (const r of sink.requests) {
    const alert = JSON.parse(r.body);
    if (alert.stream_id.startsWith(prefix) && sink.delivered.has(alert.alert_id)) {
      byId.set(alert.alert_id, alert);
    }
  }
  return byId;
}

function assertExactlyOnce(prefix: string, expected: Map<string, string>): void {
  const stored = storedAlerts(prefix);
  for (const [id, alert] of stored) {
    const where = expected.get(id);
    assert.ok(where, `unexpected alert ${id} for ${alert.stream_id} ${alert.frame_timestamp}`);
    const [stream, i] = where.split("@");
    assert.equal(alert.stream_id, stream);
    assert.equal(Date.parse(alert.frame_timestamp), BASE_TS + Number(i) * 1000);
  }
  assert.equal(stored.size, expected.size, "one stored alert per window position");
}

test("2 ingest + 2 workers: kill -9 of a worker mid-stream loses no window and stores none twice", async () => {
  const nats = { url: SHARED_NATS, stream: streamName(SHARED_NATS) };
  const dirA = await dataDir();
  const ingests = [spawnRole("ingest", nats), spawnRole("ingest", nats)];
  let workerA = spawnRole("worker", nats, { DATA_DIR: dirA, NATS_WORKER_ID: "worker-a" });
  const workerB = spawnRole("worker", nats, {
    DATA_DIR: await dataDir(),
    NATS_WORKER_ID: "worker-b",
  });
  const ports = await Promise.all(ingests.map(ready));
  const [portA, portB] = await Promise.all([ready(workerA), ready(workerB)]);
  await waitFor(
    async () => {
      const [a, b] = await Promise.all([stats(portA), stats(portB)]);
      const held = a.worker.partitions.length + b.worker.partitions.length;
      return (
        held === PARTITIONS && a.worker.partitions.length > 0 && b.worker.partitions.length > 0
      );
    },
    "both workers to hold partitions",
    20_000,
  );
  const prefix = "kill-";
  const streams = ["a", "b", "c", "d", "e", "f"].map((s) => `${prefix}${s}`);
  const count = 30;
  for (let i = 0; i < count; i++) {
    if (i === count / 2) {
      // Mid-stream: worker A holds read-ahead frames and windows; it dies without a word.
      await workerA.kill("SIGKILL");
    }
    await Promise.all(streams.map((s, k) => deliver(ports, frameBody(s, i), i + k)));
  }
  // A replacement on A's volume redelivers what A had made durable but not yet sent.
  workerA = spawnRole("worker", nats, { DATA_DIR: dirA, NATS_WORKER_ID: "worker-a2" });
  await ready(workerA);
  const expected = expectedIds(streams, count);
  await allAlerts(expected, "an alert for every window position", [workerA, workerB]);
  assertExactlyOnce(prefix, expected);
  const b = await stats(portB);
  assert.ok(b.worker.acquired > 0);
});

test("a worker stopped past its lease and resumed does not score partitions it lost", async () => {
  const nats = { url: SHARED_NATS, stream: streamName(SHARED_NATS) };
  const ingest = spawnRole("ingest", nats);
  const workerA = spawnRole("worker", nats, {
    DATA_DIR: await dataDir(),
    NATS_WORKER_ID: "stall-a",
  });
  const workerB = spawnRole("worker", nats, {
    DATA_DIR: await dataDir(),
    NATS_WORKER_ID: "stall-b",
  });
  const [port, portA, portB] = await Promise.all([ingest, workerA, workerB].map(ready));
  await waitFor(
    async () => (await stats(portA)).worker.partitions.length > 0,
    "worker A to hold partitions",
    20_000,
  );
  const prefix = "stall-";
  const streams = ["a", "b", "c", "d"].map((s) => `${prefix}${s}`);
  const count = 24;
  const stopAt = 8;
  for (let i = 0; i < stopAt; i++) {
    await Promise.all(streams.map((s) => deliver([port], frameBody(s, i))));
  }
  // Frames keep coming while A is frozen: its readers may hold some when it resumes.
  await freeze(workerA.child);
  const stoppedAt = workerA.output().length;
  for (let i = stopAt; i < count; i++) {
    await Promise.all(streams.map((s) => deliver([port], frameBody(s, i))));
  }
  await waitFor(
    async () => (await stats(portB)).worker.partitions.length === PARTITIONS,
    "worker B to take every partition over",
    20_000,
  );
  const expected = expectedIds(streams, count);
  const sentWhileStopped = new Map(
    [...expected].filter(([, at]) => Number(at.split("@")[1]) >= stopAt),
  );
  await allAlerts(sentWhileStopped, "worker B to score the frames sent while A was stopped", [
    workerB,
  ]);
  workerA.child.kill("SIGCONT");
  await waitFor(
    () => workerA.output().slice(stoppedAt).includes("partition lost"),
    "worker A to notice it lost its partitions",
    20_000,
  );
  // A rejoins: the rendezvous gives it partitions back, and it must start from B's commit.
  await waitFor(
    async () => (await stats(portA)).worker.partitions.length > 0,
    "worker A to take partitions again",
    20_000,
  );
  const resumed = workerA
    .output()
    .slice(stoppedAt)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  const frozenPositions = new Set<string>();
  for (const s of streams) {
    for (let i = stopAt; i < count; i++)
      frozenPositions.add(`${s}@${new Date(BASE_TS + i * 1000).toISOString()}`);
  }
  for (const line of resumed.filter((l) => l.msg === "batch scored")) {
    for (const f of line.frames as { stream_id: string; timestamp: string }[]) {
      assert.ok(
        !frozenPositions.has(`${f.stream_id}@${f.timestamp}`),
        `worker A scored ${f.stream_id} ${f.timestamp} after losing its lease`,
      );
    }
  }
  // Alerts A made durable before it froze are delivered by A once it runs again.
  await allAlerts(expected, "every window position", [workerA, workerB]);
  assertExactlyOnce(prefix, expected);
});

test("NATS unreachable: ingest answers 503 with Retry-After, and nothing answered 202 is lost", async () => {
  const server: NatsServer = await startNatsServer();
  cleanups.push(() => server.remove());
  const nats = { url: server.url, stream: "FAULT" };
  const ingest = spawnRole("ingest", nats, { NATS_PUBLISH_TIMEOUT_MS: "500" });
  const worker = spawnRole("worker", nats, { DATA_DIR: await dataDir() });
  const [port] = await Promise.all([ready(ingest), ready(worker)]);
  const stream = "outage-a";
  const count = 16;
  for (let i = 0; i < 6; i++) assert.equal(await deliver([port], frameBody(stream, i)), "accepted");

  await server.signal("SIGSTOP");
  // Frames 6 and 7 in flight together, 6 admitted first: both refused and taken back, 6 first.
  const frozenSent = post(port, frameBody(stream, 6));
  // /health/ready answers without the bus (/stats asks it too).
  const readyBody = async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).json();
  await waitFor(async () => (await readyBody()).queue?.depth === 1, "frame 6 to be in flight");
  const behindSent = post(port, frameBody(stream, 7));
  const [frozen, behind] = await Promise.all([frozenSent, behindSent]);
  assert.equal(frozen.status, 503);
  assert.equal(frozen.headers.get("retry-after"), "1");
  assert.equal((await frozen.json()).error, "bus_unavailable");
  assert.equal((await behind.json()).error, "bus_unavailable");
  server.signal("SIGCONT");
  await server.signal("SIGTERM");
  // Frame 6's retry is refused for the bus, not as older than 7 (taken back) or itself.
  const down = await post(port, frameBody(stream, 6));
  assert.deepEqual([down.status, (await down.json()).error], [503, "bus_unavailable"]);
  const refused = await post(port, frameBody(stream, 6));
  assert.equal((await refused.json()).error, "bus_unavailable");

  await server.start();
  // The client retries what was refused (the frozen publish may have been stored: duplicate).
  for (let i = 6; i < count; i++) {
    assert.match(await deliver([port], frameBody(stream, i)), /^(accepted|duplicate)$/);
  }
  const expected = expectedIds([stream], count);
  await allAlerts(expected, "every window after the outage", [worker]);
  assertExactlyOnce(stream, expected);
  // The outage is logged as it begins and ends, not once per refused frame.
  const lines = ingest
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  assert.equal(lines.filter((l) => /^JetStream did not acknowledge/.test(l.msg)).length, 1);
  const back = lines.filter((l) => l.msg === "JetStream acknowledges frames again");
  assert.equal(back.length, 1);
  // Four refusals above, and any of the retries' while the replica reconnected.
  assert.ok(back[0].frames_refused >= 4, JSON.stringify(back[0]));
});

test("an ingest replica killed between publish and answer: the client's retry is deduplicated", async () => {
  const server = await startNatsServer();
  cleanups.push(() => server.remove());
  const proxy = await startTcpProxy(server.port);
  cleanups.push(() => proxy.close());
  const nats = { url: server.url, stream: "DEDUP" };
  const viaProxy = spawnRole("ingest", { ...nats, url: `nats://127.0.0.1:${proxy.port}` });
  const direct = spawnRole("ingest", nats);
  const worker = spawnRole("worker", nats, { DATA_DIR: await dataDir() });
  const [portP, portD] = await Promise.all([ready(viaProxy), ready(direct), ready(worker)]);
  const stream = "dedup-a";
  const last = windowSize + 1;
  for (let i = 0; i < last; i++) await deliver([portD], frameBody(stream, i));

  const nc = await connect({ servers: server.url });
  cleanups.push(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const before = (await jsm.streams.info("DEDUP")).state.messages;
  proxy.hold = true;
  const lost = post(portP, frameBody(stream, last)).then(
    (r) => r.status,
    () => "no answer",
  );
  await waitFor(
    async () => (await jsm.streams.info("DEDUP")).state.messages === before + 1,
    "JetStream to store the frame whose acknowledgement is held",
  );
  await viaProxy.kill("SIGKILL");
  assert.equal(await lost, "no answer");
  assert.equal(await deliver([portD], frameBody(stream, last)), "duplicate");
  assert.equal((await jsm.streams.info("DEDUP")).state.messages, before + 1);

  const expected = expectedIds([stream], last + 1);
  await allAlerts(expected, "the retried frame's window", [worker]);
  assertExactlyOnce(stream, expected);
  const scored = worker
    .logs()
    .filter((l) => l.msg === "batch scored")
    .flatMap((l) => l.frames as { stream_id: string; timestamp: string }[])
    .filter((f) => f.stream_id === stream && Date.parse(f.timestamp) === BASE_TS + last * 1000);
  assert.equal(scored.length, 1, "the retried frame is scored once");
});

test("the same roles run under Deno: an ingest replica and a worker score a stream", async () => {
  const nats = { url: SHARED_NATS, stream: streamName(SHARED_NATS) };
  const ingest = spawnRole("ingest", nats, {}, "deno");
  const worker = spawnRole("worker", nats, { DATA_DIR: await dataDir() }, "deno");
  const [port] = await Promise.all([ready(ingest), ready(worker)]);
  const stream = "deno-a";
  const count = windowSize + 3;
  for (let i = 0; i < count; i++)
    assert.equal(await deliver([port], frameBody(stream, i)), "accepted");
  const expected = expectedIds([stream], count);
  await allAlerts(expected, "the Deno worker's alerts", [worker]);
  assertExactlyOnce(stream, expected);
});

test("ingest answers 429 while the partition's owner reports more than NATS_MAX_LAG frames behind", async () => {
  const nats = { url: SHARED_NATS, stream: streamName(SHARED_NATS) };
  const ingest = spawnRole("ingest", nats, { NATS_MAX_LAG: "100" });
  const port = await ready(ingest);
  const stream = "lag-a";
  const p = partitionOf(stream, PARTITIONS);
  const nc = await connect({ servers: SHARED_NATS });
  cleanups.push(() => nc.close());
  const kv = await new Kvm(nc).open(`${nats.stream}_leases`);
  // What a worker writes when it commits: its position and how much is still unread.
  const record = (lag: number) =>
    JSON.stringify({ owner: "w", expires: Date.now() + 60_000, committed: 1, replay: 0, lag });
  await kv.put(`p.${p}`, record(250));
  const refused = await waitFor(async () => {
    const res = await post(port, frameBody(stream, 0));
    return res.status === 429 ? res : undefined;
  }, "the replica to see the lag");
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.equal((await refused.json()).error, "queue_full");
  const other = [..."bcdefghijklmnop"]
    .map((c) => `lag-${c}`)
    .find((s) => partitionOf(s, PARTITIONS) !== p)!;
  assert.equal(
    (await post(port, frameBody(other, 0))).status,
    202,
    "other partitions still accept",
  );
  await kv.put(`p.${p}`, record(3));
  // A later frame: the probes above may have had frame 0 accepted before the lag was seen.
  assert.equal(await deliver([port], frameBody(stream, 1)), "accepted");
});

test("incident mode: after a kill -9 the new partition owner continues the stream's open incident", async () => {
  const nats = { url: SHARED_NATS, stream: streamName(SHARED_NATS) };
  const incidents = {
    ALERT_MODE: "incident",
    INCIDENT_CONFIRM_K: "1",
    INCIDENT_CONFIRM_N: "1",
    INCIDENT_QUIET_WINDOWS: "2",
  };
  const ingest = spawnRole("ingest", nats);
  const workerA = spawnRole("worker", nats, { ...incidents, DATA_DIR: await dataDir() });
  const [port, portA] = await Promise.all([ready(ingest), ready(workerA)]);
  await waitFor(
    async () => (await stats(portA)).worker.partitions.length === PARTITIONS,
    "worker A to hold every partition",
    20_000,
  );
  const stream = "incident-a";
  // Stored alerts: one per alert_id (a redelivery is the same alert).
  const alertsOf = () => [
    ...new Map(
      sink.requests
        .map((r) => JSON.parse(r.body))
        .filter((a) => a.stream_id === stream && sink.delivered.has(a.alert_id))
        .map((a) => [a.alert_id, a]),
    ).values(),
  ];
  let i = 0;
  for (; i < windowSize + 2; i++) await deliver([port], frameBody(stream, i));
  await waitFor(() => alertsOf().some((a) => a.event === "opened"), "the incident to open");
  const workerB = spawnRole("worker", nats, { ...incidents, DATA_DIR: await dataDir() });
  const portB = await ready(workerB);
  await workerA.kill("SIGKILL");
  await waitFor(
    async () => (await stats(portB)).worker.partitions.length === PARTITIONS,
    "worker B to take every partition over",
    20_000,
  );
  for (const end = i + 3; i < end; i++) await deliver([port], frameBody(stream, i));
  // Normal frames: once the spikes leave the window, quiet windows resolve the incident.
  for (const end = i + windowSize + 4; i < end; i++) {
    const body = jsonFrame(model.featureNames, model.normalFrame(i), {
      stream_id: stream,
      timestamp: BASE_TS + i * 1000,
    });
    await deliver([port], body);
  }
  await waitFor(
    () => alertsOf().some((a) => a.event === "resolved"),
    "the incident to resolve",
    30_000,
  );
  const events = alertsOf();
  assert.equal(events.filter((a) => a.event === "opened").length, 1, "opened once, by worker A");
  // The incident context, as the single process gives it: the fault kind, and the strongest
  // sensor's readings up to the alert from the history the worker kept.
  const opened = events.find((a) => a.event === "opened");
  assert.ok(opened.kind === "sensor" || opened.kind === "process", `kind ${opened.kind}`);
  const history = opened.anomalous_features[0].history;
  assert.ok(history && history.values.length >= windowSize, "the worker sends its history");
  assert.equal(
    history.values.at(-1),
    opened.anomalous_features[0].value,
    "up to the alert's frame",
  );
  assert.equal(new Set(events.map((a) => a.incident_id)).size, 1, "one incident across owners");
  const b = await stats(portB);
  assert.ok(b.frames.scored > 0, "worker B scored the stream after the takeover");
});

test("ENGINE_ROLE=all on the NATS bus: one process ingests, scores and hands over on SIGTERM", async () => {
  const nats = { url: SHARED_NATS, stream: streamName(SHARED_NATS) };
  const one = spawnRole("all", nats, { DATA_DIR: await dataDir() });
  const port = await ready(one);
  const stream = "all-a";
  const count = windowSize + 2;
  for (let i = 0; i < count; i++)
    assert.equal(await deliver([port], frameBody(stream, i)), "accepted");
  const expected = expectedIds([stream], count);
  await allAlerts(expected, "the single process's alerts", [one]);
  assertExactlyOnce(stream, expected);
  assert.equal(await one.kill("SIGTERM"), 0);
  assert.ok(
    one.logs().some((l) => l.msg === "partition handed over"),
    "leases released on exit",
  );
});
