// A partition taken over by a new worker: its windows and running levels are rebuilt from the replay point as the old owner had them, after a version with running levels and across a store-and-forward gateway's uploads; a backlog forwarded past a silence continues its window at its owner (real processes, private nats-server).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { KV } from "@nats-io/kv";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { encodeFrame } from "./bus/frame_message.ts";
import { type NatsBus, openNatsBus } from "./bus/nats_bus.ts";
import { frameMessageId } from "./bus/partition_of.ts";
import { NatsModelRegistry } from "./infer/nats_registry.ts";

const NAME = "takeover_12";
const BASE = Date.UTC(2026, 0, 1);

let plain: ModelFixture;
let levelled: ModelFixture;
let plainVersion = "";
let levelledVersion = "";
let windowSize = 0;
let nats: NatsServer;
const procs: EngineProcess[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  [plain, levelled, nats] = await Promise.all([
    trainFixtureModel({ features: 12, name: NAME }),
    // The last two sensors drift: this version judges them against a running level.
    trainFixtureModel({ features: 12, name: NAME, drifting: 2 }),
    startNatsServer(),
  ]);
  const versionOf = async (m: ModelFixture) =>
    JSON.parse(await readFile(join(m.dir, `${NAME}.json`), "utf8"));
  const plainMeta = await versionOf(plain);
  plainVersion = plainMeta.version;
  windowSize = plainMeta.window_size;
  const meta = await versionOf(levelled);
  levelledVersion = meta.version;
  assert.ok(meta.baseline?.features.includes(10), "the second version has running levels");
});
after(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await nats?.remove();
  await plain?.remove();
  await levelled?.remove();
});

interface Frame {
  streamId: string;
  /** Frame time, offset from BASE (ms). */
  t: number;
  /** When the ingest replica received it (bus time, epoch ms). */
  receivedAt: number;
  version: string;
  values: Float32Array;
}

interface Run {
  name: string;
  bus: NatsBus;
  leases: KV;
  registry: NatsModelRegistry;
  sink: AlertSink;
  dataDir: string;
  lastSeq: number;
}

async function openRun(name: string): Promise<Run> {
  const bus = await openNatsBus({
    url: nats.url,
    stream: name,
    partitions: 1,
    maxBytes: 2 ** 30,
    maxAgeS: 3600,
    name: `test-${name}`,
  });
  cleanups.push(() => bus.close());
  const registry = await NatsModelRegistry.open(bus.nc, name);
  const sink = await startAlertSink();
  cleanups.push(() => sink.close());
  const dataDir = await mkdtemp(join(tmpdir(), "takeover-worker-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  return { name, bus, leases: bus.kv, registry, sink, dataDir, lastSeq: 0 };
}

async function publish(run: Run, frames: Frame[]): Promise<void> {
  for (const f of frames) {
    const timestamp = BASE + f.t;
    const { headers, payload } = encodeFrame({
      streamId: f.streamId,
      timestamp,
      receivedAt: f.receivedAt,
      model: f.version,
      modelName: NAME,
      values: f.values,
    });
    const ack = await run.bus.js.publish(run.bus.subject(0), payload, {
      headers,
      msgID: frameMessageId(f.streamId, timestamp),
    });
    run.lastSeq = Math.max(run.lastSeq, ack.seq);
  }
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
    MODEL_DIR: plain.dir,
    DEFAULT_MODEL_NAME: NAME,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: run.sink.origin,
    // Every worker of a run on one folder: a killed one's outbox is delivered by the next.
    DATA_DIR: run.dataDir,
    // One alert per flagged window: every window scored shows at the sink.
    ALERT_MODE: "frame",
    EVIDENCE_HISTORY_FRAMES: "0",
  });
  procs.push(p);
  return p;
}

const committedOf = async (leases: KV) =>
  Number(JSON.parse((await leases.get("p.0"))?.string() ?? "{}").committed ?? 0);

/** Waits until `p` committed the partition to its last frame and delivered every alert. */
async function scored(run: Run, p: EngineProcess): Promise<void> {
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
}

/** Per stream, the ends (frame time offsets, s) of its flagged windows, in order. */
function flagged(run: Run): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const seen = new Set<string>();
  for (const r of run.sink.requests) {
    const alert = JSON.parse(r.body);
    if (!run.sink.delivered.has(alert.alert_id) || seen.has(alert.alert_id)) continue;
    seen.add(alert.alert_id);
    const at = (Date.parse(alert.frame_timestamp) - BASE) / 1000;
    out[alert.stream_id] = [...(out[alert.stream_id] ?? []), at];
  }
  for (const ends of Object.values(out)) ends.sort((a, b) => a - b);
  return out;
}

/**
 * The same frames, in two phases, to one worker that scores both ("one") and to a worker killed
 * after the first, its partition taken over by another for the second ("taken over"); `between`
 * runs after the first phase in both. Returns each run's flagged windows.
 */
async function compare(
  name: string,
  first: Frame[],
  second: Frame[],
  setUp: (run: Run) => Promise<void>,
  between: (run: Run) => Promise<unknown>,
): Promise<{ one: Record<string, number[]>; takenOver: Record<string, number[]> }> {
  const results: Record<string, number[]>[] = [];
  for (const kill of [false, true]) {
    const run = await openRun(`${name}_${kill ? "KILLED" : "ONE"}`);
    await setUp(run);
    await publish(run, first);
    const a = worker(run, `${run.name}-a`);
    await scored(run, a);
    await between(run);
    let last = a;
    if (kill) {
      await a.kill("SIGKILL");
      last = worker(run, `${run.name}-b`);
    }
    await publish(run, second);
    await scored(run, last);
    results.push(flagged(run));
    await last.kill("SIGTERM");
  }
  return { one: results[0], takenOver: results[1] };
}

test("scale-out: a partition taken over after its streams' version gained running levels: the new owner flags the level shift as the old one would", async () => {
  const receivedAt = Date.now() - 3_600_000;
  const frame = (streamId: string, i: number, version: string): Frame => {
    const values = levelled.normalFrame(i);
    // From frame 112 on, stream "shifted"'s drifting sensor 10 reads 5 higher (its noise: 0.06).
    if (streamId === "shifted" && i >= 112) values[10] += 5;
    return { streamId, t: i * 1000, receivedAt: receivedAt + i * 1000, version, values };
  };
  const frames = (from: number, to: number) => {
    const out: Frame[] = [];
    for (let i = from; i < to; i++) {
      // The first 20 frames name the version without levels, the others the one with them.
      const version = i < 20 ? plainVersion : levelledVersion;
      for (const s of ["shifted", "steady"]) out.push(frame(s, i, version));
    }
    return out;
  };
  const { one, takenOver } = await compare(
    "LEVELS",
    frames(0, 120),
    frames(120, 170),
    async (run) => {
      // The version without levels active when the first worker takes the partition.
      await run.registry.publishFromDisk(
        { name: NAME, version: plainVersion, dir: plain.dir, layout: "flat" },
        { activate: true, by: "test" },
      );
      await run.registry.publishFromDisk(
        { name: NAME, version: levelledVersion, dir: levelled.dir, layout: "flat" },
        { by: "test" },
      );
    },
    // Active when the partition is taken over: the new owner rebuilds its windows with it.
    (run) => run.registry.activate(NAME, levelledVersion, { by: "test" }),
  );
  const after = (ends: number[] = []) => ends.filter((t) => t >= 120);
  assert.ok(
    after(one.shifted).length > 0,
    `one worker flags the shift after frame 120: ${JSON.stringify(one.shifted)}`,
  );
  assert.deepEqual(
    after(takenOver.shifted),
    after(one.shifted),
    "windows of the shifted stream flagged after the takeover",
  );
  assert.deepEqual(after(takenOver.steady), after(one.steady));
});

test("scale-out: a store-and-forward gateway posting a few frames every 6 minutes: every window scored, by one worker and across a takeover", async () => {
  // Each upload: 4 one-second frames (fewer than a window), posted 20 ms apart, every 6 minutes
  // of bus time (past INCIDENT_STALE_MS, 5 minutes); frame times run on without a gap, every
  // frame anomalous. The window carries over from upload to upload, as in the single process.
  const R = Date.now() - 3_600_000;
  const PER = 4;
  const upload = (u: number): Frame[] =>
    Array.from({ length: PER }, (_, k) => {
      const i = u * PER + k;
      return {
        streamId: "gw",
        t: i * 1000,
        receivedAt: R + u * 360_000 + k * 20,
        version: plainVersion,
        values: plain.spikedFrame(i, 6),
      };
    });
  const frames = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, n) => upload(from + n)).flat();
  assert.ok(PER < windowSize, `an upload (${PER}) is shorter than a window (${windowSize})`);
  const { one, takenOver } = await compare(
    "GATEWAY",
    frames(0, 3),
    // Taken over between the third upload and the fourth.
    frames(3, 6),
    async () => {},
    async () => {},
  );
  // A window ends at every frame from the window_size-th on.
  const every = Array.from({ length: 6 * PER - windowSize + 1 }, (_, n) => windowSize - 1 + n);
  assert.deepEqual(one.gw ?? [], every, "windows flagged by one worker (frame time ends, s)");
  assert.deepEqual(takenOver.gw ?? [], every, "windows flagged across the takeover");
});

test("scale-out: a stream forwarding its backlog past a silence continues its window at its owner; a new owner taking over before it sent a window's frames starts it afresh", async () => {
  const R = Date.now() - 3_600_000;
  const first: Frame[] = [];
  // "live" sends every second for 600 s; the gateway "gw" for 200 s, then loses its uplink.
  for (let s = 0; s < 600; s++) {
    const at = R + s * 1000;
    if (s < 200) {
      first.push({
        streamId: "gw",
        t: s * 1000,
        receivedAt: at,
        version: plainVersion,
        values: plain.normalFrame(s),
      });
    }
    first.push({
      streamId: "live",
      t: s * 1000,
      receivedAt: at,
      version: plainVersion,
      values: plain.normalFrame(s),
    });
  }
  // Back after 400 s of bus time, the gateway forwards its backlog: frame times running on from
  // 200 s without a gap, every one anomalous. By then "live" took the bus time past the silence,
  // so "gw" no longer held the replay point when the partition was taken over.
  const second: Frame[] = [];
  for (let k = 0; k < 40; k++) {
    const at = R + 600_000 + k * 50;
    second.push({
      streamId: "gw",
      t: (200 + k) * 1000,
      receivedAt: at,
      version: plainVersion,
      values: plain.spikedFrame(200 + k, 6),
    });
    second.push({
      streamId: "live",
      t: (600 + k) * 1000,
      receivedAt: at,
      version: plainVersion,
      values: plain.normalFrame(600 + k),
    });
  }
  const { one, takenOver } = await compare(
    "BACKLOG",
    first,
    second,
    async () => {},
    async () => {},
  );
  const backlog = (ends: number[] = []) => ends.filter((t) => t >= 200 && t < 240);
  const full = 200 + windowSize - 1;
  assert.deepEqual(
    backlog(one.gw),
    Array.from({ length: 40 }, (_, k) => 200 + k),
    "one worker continues the window: every backlog frame ends a flagged window",
  );
  assert.deepEqual(
    backlog(takenOver.gw),
    backlog(one.gw).filter((t) => t >= full),
    "the new owner starts the window with the backlog's first frame",
  );
  assert.deepEqual(takenOver.live ?? [], one.live ?? []);
});
