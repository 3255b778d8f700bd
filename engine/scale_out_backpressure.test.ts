// Scale-out back-pressure against a real nats-server: what fills the stream, and when ingest answers 429.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { delay } from "./_delay.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { encodeFrame } from "./bus/frame_message.ts";
import { openNatsBus } from "./bus/nats_bus.ts";
import { frameMessageId } from "./bus/partition_of.ts";

const BASE = Date.UTC(2026, 0, 1);

let wide: ModelFixture;
let narrow: ModelFixture;
let sink: AlertSink;
let nats: NatsServer;
const procs: EngineProcess[] = [];

before(async () => {
  // 4,000-byte frames: a 1 MiB stream holds some 250 of them.
  wide = await trainFixtureModel({ features: 1000, name: "wide_1000" });
  narrow = await trainFixtureModel({ features: 12, name: "narrow_12" });
  sink = await startAlertSink();
  nats = await startNatsServer();
});
after(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  await nats?.remove();
  await sink?.close();
  await wide?.remove();
  await narrow?.remove();
});

function role(
  model: ModelFixture,
  env: Record<string, string>,
  alerts: AlertSink = sink,
): EngineProcess {
  const p = spawnEngine("node", {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: alerts.origin,
    ALERT_MODE: "frame",
    INGEST_WORKERS: "0",
    FRAME_BUS: "nats",
    NATS_URL: nats.url,
    NATS_PARTITIONS: "1",
    NATS_LEASE_MS: "1500",
    ...env,
  });
  procs.push(p);
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

test("scored frames leave the stream: ingest accepts several times NATS_STREAM_MAX_BYTES while the worker keeps up", async () => {
  const maxBytes = 1024 * 1024;
  const env = { NATS_STREAM: "BOUND", NATS_STREAM_MAX_BYTES: String(maxBytes) };
  const ingest = role(wide, { ...env, ENGINE_ROLE: "ingest" });
  const worker = role(wide, { ...env, ENGINE_ROLE: "worker", NATS_WORKER_ID: "w1" });
  const [ip, wp] = await Promise.all([ready(ingest), ready(worker)]);
  const frames = 800; // 3.2 MB of frames
  for (let i = 0; i < frames; i++) {
    const body = jsonFrame(wide.featureNames, wide.normalFrame(i), {
      stream_id: "line-1",
      timestamp: BASE + i * 1000,
    });
    const res = await fetch(`http://127.0.0.1:${ip}/data-enqueue`, { method: "POST", body });
    assert.equal(res.status, 202, `frame ${i}: ${res.status} ${await res.text()}`);
    // Some 80 frames a second (the stream holds 250), and the worker keeps up: what waits in
    // the stream unscored, or scored and not purged yet (at most a second's), stays under the bound.
    await delay(10);
    if (i % 25 === 24) {
      await waitFor(
        async () => (await stats(wp)).frames.scored >= i - 25,
        `the worker to score up to frame ${i - 25}`,
        20_000,
        20,
      );
    }
  }
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    // Once the worker is idle, its last commit's purge leaves only the replay frames.
    await waitFor(
      async () => (await jsm.streams.info("BOUND")).state.bytes < maxBytes / 4,
      "the stream to hold little more than the replay frames",
      10_000,
      100,
    );
  } finally {
    await nc.close();
  }
  assert.ok((await stats(wp)).worker.purged > 0, "the worker purged scored frames");
});

test("a worker whose outbox is full reports its growing lag, and ingest answers 429 past NATS_MAX_LAG", async () => {
  const backend = await startAlertSink();
  backend.answer = 503; // the backend is down: alerts stay in the outbox
  try {
    const env = {
      NATS_STREAM: "OUTBOXLAG",
      NATS_MAX_LAG: "20",
      OUTBOX_MAX_ALERTS: "5",
      RETRY_BASE_MS: "50",
      RETRY_MAX_MS: "200",
    };
    const ingest = role(narrow, { ...env, ENGINE_ROLE: "ingest" }, backend);
    const worker = role(narrow, { ...env, ENGINE_ROLE: "worker", NATS_WORKER_ID: "w1" }, backend);
    const [ip] = await Promise.all([ready(ingest), ready(worker)]);
    let i = 0;
    const post = () =>
      fetch(`http://127.0.0.1:${ip}/data-enqueue`, {
        method: "POST",
        // Spiked: every window alerts, so the outbox fills within a few frames.
        body: jsonFrame(narrow.featureNames, narrow.spikedFrame(i, 6), {
          stream_id: "s",
          timestamp: BASE + i++ * 1000,
        }),
      });
    const refused = await waitFor(
      async () => {
        const res = await post();
        if (res.status === 429) return res;
        const text = await res.text();
        assert.equal(res.status, 202, text);
        assert.ok(i < 400, "400 frames accepted while the outbox is full");
        return undefined;
      },
      "ingest to answer 429",
      30_000,
      20,
    );
    assert.equal((await refused.json()).error, "queue_full");
    assert.ok(
      worker.logs().some((l) => l.msg.startsWith("alert outbox full")),
      "the worker's outbox is full",
    );
    backend.answer = 201;
    // The outbox drains, the worker catches up and commits: frames are accepted again.
    await waitFor(
      async () => {
        const res = await post();
        await res.text();
        return res.status === 202;
      },
      "ingest to accept again once the worker caught up",
      30_000,
      100,
    );
  } finally {
    await backend.close();
  }
});

test("a worker reports as its lag the frames after its commit, counted once, and bounds its read-ahead in frames", async () => {
  const name = "LAGCOUNT";
  const bus = await openNatsBus({
    url: nats.url,
    stream: name,
    partitions: 1,
    maxBytes: 2 ** 30,
    maxAgeS: 3600,
    name: "test-lagcount",
  });
  try {
    const meta = JSON.parse(await readFile(join(narrow.dir, `${narrow.name}.json`), "utf8"));
    // A backlog the worker reads ahead of its scoring (all of it fits its read-ahead budget).
    const frames = 12_000;
    let acks: Promise<unknown>[] = [];
    for (let i = 0; i < frames; i++) {
      const streamId = `s${i % 64}`;
      const timestamp = BASE + i * 1000;
      const { headers, payload } = encodeFrame({
        streamId,
        timestamp,
        receivedAt: Date.now(),
        model: meta.version,
        modelName: narrow.name,
        values: narrow.normalFrame(i),
      });
      acks.push(
        bus.js.publish(bus.subject(0), payload, {
          headers,
          msgID: frameMessageId(streamId, timestamp),
        }),
      );
      if (acks.length === 1000) {
        await Promise.all(acks);
        acks = [];
      }
    }
    await Promise.all(acks);
    const last = (await bus.jsm.streams.info(name)).state.last_seq;
    const records: { committed: number; lag: number }[] = [];
    const watch = await bus.kv.watch({ key: "p.0" });
    const done = (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        const record = e.json<{ committed: number; lag: number }>();
        if (record.committed > 0) records.push(record);
        if (record.committed >= last) return;
      }
    })();
    const worker = role(narrow, {
      NATS_STREAM: name,
      ENGINE_ROLE: "worker",
      NATS_WORKER_ID: "w1",
      NATS_LEASE_MS: "3000",
    });
    const port = await ready(worker);
    await waitFor(() => records.at(-1)?.committed === last, "the backlog committed", 30_000, 50);
    watch.stop();
    await done;
    const midway = records.filter((r) => r.committed < last);
    assert.ok(midway.length >= 3, `${midway.length} commits before the end`);
    for (const { committed, lag } of midway) {
      const after = last - committed;
      assert.ok(
        Math.abs(lag - after) <= Math.max(5, after * 0.02),
        `committed ${committed}: lag ${lag}, frames after it ${after}`,
      );
    }
    // Each buffered frame counts its values and what holding it costs (some 1.3 KB), not 48 bytes.
    const { queue } = await stats(port);
    assert.ok(
      queue.capacity > 0 && queue.capacity <= (32 * 2 ** 20) / 1300,
      `read-ahead capacity ${queue.capacity} frames`,
    );
  } finally {
    await bus.close();
  }
});
