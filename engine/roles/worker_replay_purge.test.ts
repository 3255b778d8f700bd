// A worker against a real nats-server: a stream that stopped sending stops holding its partition's purge back.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { type EngineProcess, spawnEngine, waitReady } from "../_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { encodeFrame } from "../bus/frame_message.ts";
import { type NatsBus, openNatsBus } from "../bus/nats_bus.ts";
import { frameMessageId } from "../bus/partition_of.ts";

const BASE = Date.UTC(2026, 0, 1);
const STREAM = "PINNED";

let model: ModelFixture;
let sink: AlertSink;
let nats: NatsServer;
let bus: NatsBus;
let worker: EngineProcess | undefined;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "narrow_12" });
  sink = await startAlertSink();
  nats = await startNatsServer();
  bus = await openNatsBus({
    url: nats.url,
    stream: STREAM,
    partitions: 1,
    maxBytes: 2 ** 30,
    maxAgeS: 3600,
    name: "test-pinned",
  });
});
after(async () => {
  await worker?.kill("SIGKILL");
  await bus?.close();
  await nats?.remove();
  await sink?.close();
  await model?.remove();
});

test("a worker's replay point passes a stream silent past INCIDENT_STALE_MS, and its frames are purged", async () => {
  const meta = JSON.parse(await readFile(join(model.dir, `${model.name}.json`), "utf8"));
  // Received over 210 s of bus time, a frame a second: "old-line" sends 10 and stops, "live"
  // goes on for 200 s in the same partition.
  const receivedFrom = Date.now() - 300_000;
  const publish = async (streamId: string, i: number, receivedAt: number) => {
    const timestamp = BASE + i * 1000;
    const { headers, payload } = encodeFrame({
      streamId,
      timestamp,
      receivedAt,
      model: meta.version,
      modelName: model.name,
      values: model.normalFrame(i),
    });
    return (
      await bus.js.publish(bus.subject(0), payload, {
        headers,
        msgID: frameMessageId(streamId, timestamp),
      })
    ).seq;
  };
  let oldLast = 0;
  for (let i = 0; i < 10; i++) oldLast = await publish("old-line", i, receivedFrom + i * 1000);
  let last = 0;
  for (let i = 0; i < 200; i++) last = await publish("live", i, receivedFrom + 10_000 + i * 1000);

  worker = spawnEngine("node", {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    ALERT_MODE: "frame",
    FRAME_BUS: "nats",
    NATS_URL: nats.url,
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: "1",
    NATS_LEASE_MS: "1500",
    ENGINE_ROLE: "worker",
    NATS_WORKER_ID: "w1",
    INCIDENT_STALE_MS: "60000",
  });
  await waitReady(await worker.port());
  const record = await waitFor(
    async () => {
      const value = JSON.parse((await bus.kv.get("p.0"))?.string() || "{}");
      return value.committed === last ? (value as { replay: number }) : undefined;
    },
    "the worker to commit every frame",
    30_000,
    50,
  );
  // "live"'s last frames rebuild its window; "old-line", silent for 200 s, holds nothing.
  assert.ok(
    record.replay > oldLast,
    `replay point ${record.replay} is past old-line's last frame ${oldLast}`,
  );
  await waitFor(
    async () => (await bus.jsm.streams.info(STREAM)).state.first_seq > oldLast,
    "old-line's frames to be purged",
    10_000,
    100,
  );
});
