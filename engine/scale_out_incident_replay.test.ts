// A worker killed while its incident state is ahead of its commit: the new owner re-reads windows of an incident already resolved and opens no second one.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { KV } from "@nats-io/kv";
import { kvBucket } from "./_buckets.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { encodeFrame } from "./bus/frame_message.ts";
import { type NatsBus, openNatsBus } from "./bus/nats_bus.ts";
import { frameMessageId } from "./bus/partition_of.ts";

// One partition, STREAMS streams whose frames interleave; each stream is spiked for SPIKE of
// every CYCLE frames (offset per stream), so incidents open and resolve all through the backlog.
const STREAMS = 8;
const FRAMES = 480;
const CYCLE = 60;
const SPIKE = 24;
const QUIET = 2;
const BASE = Date.UTC(2026, 0, 1);

let model: ModelFixture;
let meta: { name: string; version: string };
let nats: NatsServer;
const procs: EngineProcess[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "replay_12" });
  meta = JSON.parse(await readFile(join(model.dir, `${model.name}.json`), "utf8"));
  nats = await startNatsServer();
});
after(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await nats?.remove();
  await model?.remove();
});

interface Run {
  name: string;
  bus: NatsBus;
  leases: KV;
  incidents: KV;
  sink: AlertSink;
  dataDir: string;
  /** Stream sequence of frame `i` of stream `s`, keyed `s@i`. */
  seqs: Map<string, number>;
  lastSeq: number;
}

/** A stream `name` holding the whole backlog before any worker starts, and the buckets to watch. */
async function backlog(name: string): Promise<Run> {
  const bus = await openNatsBus({
    url: nats.url,
    stream: name,
    partitions: 1,
    maxBytes: 2 ** 30,
    maxAgeS: 3600,
    name: `test-${name}`,
  });
  cleanups.push(() => bus.close());
  const incidents = await kvBucket(bus.nc, `${name}_incidents`, { history: 1 });
  const sink = await startAlertSink();
  cleanups.push(() => sink.close());
  const dataDir = await mkdtemp(join(tmpdir(), "replay-worker-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const seqs = new Map<string, number>();
  let lastSeq = 0;
  for (let i = 0; i < FRAMES; i++) {
    const acks = [];
    for (let s = 0; s < STREAMS; s++) {
      const streamId = `st${s}`;
      const timestamp = BASE + i * 1000;
      const spiked = (i + s * 7) % CYCLE < SPIKE;
      const { headers, payload } = encodeFrame({
        streamId,
        timestamp,
        receivedAt: Date.now(),
        model: meta.version,
        modelName: meta.name,
        values: spiked ? model.spikedFrame(i, 6) : model.normalFrame(i),
      });
      acks.push(
        bus.js
          .publish(bus.subject(0), payload, {
            headers,
            msgID: frameMessageId(streamId, timestamp),
          })
          .then((ack) => {
            seqs.set(`${streamId}@${i}`, ack.seq);
            lastSeq = Math.max(lastSeq, ack.seq);
          }),
      );
    }
    await Promise.all(acks);
  }
  return { name, bus, leases: bus.kv, incidents, sink, dataDir, seqs, lastSeq };
}

function worker(run: Run, id: string): EngineProcess {
  const p = spawnEngine("node", {
    ENGINE_ROLE: "worker",
    FRAME_BUS: "nats",
    NATS_URL: nats.url,
    NATS_STREAM: run.name,
    NATS_PARTITIONS: "1",
    NATS_LEASE_MS: "1500",
    NATS_WORKER_ID: id,
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: run.sink.origin,
    // Every worker of a run on one folder: a killed one's outbox is delivered by the next.
    DATA_DIR: run.dataDir,
    ALERT_MODE: "incident",
    INCIDENT_CONFIRM_K: "1",
    INCIDENT_CONFIRM_N: "1",
    INCIDENT_QUIET_WINDOWS: String(QUIET),
    EVIDENCE_HISTORY_FRAMES: "0",
  });
  procs.push(p);
  return p;
}

const committedOf = async (leases: KV) =>
  Number(JSON.parse((await leases.get("p.0"))?.string() ?? "{}").committed ?? 0);

/** Waits until the partition is committed to its last frame and the outbox is delivered. */
async function finished(run: Run, p: EngineProcess): Promise<Set<string>> {
  const port = await p.port();
  await waitReady(port);
  await waitFor(
    async () => {
      if ((await committedOf(run.leases)) < run.lastSeq) return false;
      const stats = await (await fetch(`http://127.0.0.1:${port}/stats`)).json();
      return stats.alerts.outbox === 0;
    },
    `${run.name} scored to its last frame and every alert delivered`,
    45_000,
    100,
  );
  const ids = new Set<string>();
  for (const r of run.sink.requests) {
    const alert = JSON.parse(r.body);
    if (run.sink.delivered.has(alert.alert_id)) ids.add(alert.incident_id);
  }
  return ids;
}

test("a worker killed with its incident state ahead of its commit: the new owner opens no incident twice", async () => {
  const clean = await backlog("CLEAN");
  const cleanIds = await finished(clean, worker(clean, "c1"));
  assert.ok(cleanIds.size >= STREAMS * 4, `${cleanIds.size} incidents in the clean run`);

  const run = await backlog("KILLED");
  // The kill point that makes the phantom: stream X's incident resolved and its state saved,
  // while the commit is still inside that incident (after its first flagged window, before its
  // last). The new owner then re-scores the incident's last flagged windows.
  let committed = 0;
  const leaseWatch = await run.leases.watch({ key: "p.0" });
  void (async () => {
    for await (const e of leaseWatch) {
      if (e.operation === "PUT") committed = Number(e.json<{ committed: number }>().committed);
    }
  })();
  const stateWatch = await run.incidents.watch({ include: "updates" });
  let victim: EngineProcess | undefined;
  let point: { stream: string; from: number; to: number } | undefined;
  void (async () => {
    for await (const e of stateWatch) {
      if (e.operation !== "PUT" || !victim) continue;
      const state = e.json<{ snapshot?: unknown; alerts?: { body: string }[] }>();
      if (state.snapshot || !state.alerts?.length) continue;
      const alert = JSON.parse(state.alerts.at(-1)!.body);
      if (alert.event !== "resolved") continue;
      const frame = (ts: string) => (Date.parse(ts) - BASE) / 1000;
      const from = run.seqs.get(`${alert.stream_id}@${frame(alert.incident_started_at)}`)!;
      const to = run.seqs.get(`${alert.stream_id}@${frame(alert.frame_timestamp) - QUIET}`)!;
      if (!(committed >= from && committed < to)) continue;
      victim.child.kill("SIGKILL");
      victim = undefined;
      point = { stream: alert.stream_id, from, to };
    }
  })();
  cleanups.push(async () => {
    leaseWatch.stop();
    stateWatch.stop();
  });
  // A commit can land between the decision and the kill: then another worker takes over and
  // is killed at a later such point (one comes every few resolutions).
  let killedAt: { committed: number; stream: string } | undefined;
  for (let attempt = 1; attempt <= 4 && !killedAt; attempt++) {
    const p = worker(run, `k${attempt}`);
    await waitReady(await p.port());
    point = undefined;
    victim = p;
    const killed = await waitFor(
      () => {
        assert.ok(committed < run.lastSeq, "the backlog was scored without a kill point");
        return point;
      },
      `a kill point for worker k${attempt}`,
      30_000,
    );
    await p.exited;
    const at = await committedOf(run.leases);
    if (at >= killed.from && at < killed.to) killedAt = { committed: at, stream: killed.stream };
  }
  assert.ok(killedAt, "a worker was killed inside an incident it had resolved but not committed");
  const killIds = await finished(run, worker(run, "final"));
  const phantoms = [...killIds].filter((id) => !cleanIds.has(id));
  const missing = [...cleanIds].filter((id) => !killIds.has(id));
  assert.deepEqual(
    { phantoms, missing },
    { phantoms: [], missing: [] },
    `killed at commit ${killedAt.committed} inside ${killedAt.stream}'s incident`,
  );
});
