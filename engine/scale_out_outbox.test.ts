import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";

// A scale-out worker honours OUTBOX_MAX_ALERTS as the single process does: while the backend is
// down and its outbox full it takes no frame (they wait in JetStream), and once the backend is
// back every anomalous window's alert arrives.
let model: ModelFixture;
let sink: AlertSink;
let nats: NatsServer;
const procs: EngineProcess[] = [];

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "outbox_12" });
  sink = await startAlertSink();
  nats = await startNatsServer();
});
after(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  await nats?.remove();
  await sink?.close();
  await model?.remove();
});

const BASE = Date.UTC(2026, 10, 24, 9);

test("a scale-out worker takes no frame while its outbox is full, and delivers every alert once the backend is back", async () => {
  sink.answer = 503;
  const env = {
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    RETRY_BASE_MS: "50",
    RETRY_MAX_MS: "200",
    ALERT_MODE: "frame",
    OUTBOX_MAX_ALERTS: "5",
    FRAME_BUS: "nats",
    NATS_URL: nats.url,
    NATS_STREAM: "OUTBOXFULL",
    NATS_PARTITIONS: "1",
    NATS_LEASE_MS: "1500",
  };
  const worker = spawnEngine("node", { ...env, ENGINE_ROLE: "worker", NATS_WORKER_ID: "w1" });
  const ingest = spawnEngine("node", { ...env, ENGINE_ROLE: "ingest" });
  procs.push(worker, ingest);
  const [wp, ip] = [await worker.port(), await ingest.port()];
  await waitReady(wp);
  await waitReady(ip);
  const stats = async () => (await fetch(`http://127.0.0.1:${wp}/stats`)).json();
  // One spiked frame at a time: every window from the fifth on is anomalous (its own alert).
  const FRAMES = 40;
  for (let i = 0; i < FRAMES; i++) {
    const body = jsonFrame(model.featureNames, model.spikedFrame(i, 6), {
      stream_id: "s",
      timestamp: BASE + i * 1000,
    });
    const res = await fetch(`http://127.0.0.1:${ip}/data-enqueue`, { method: "POST", body });
    assert.equal(res.status, 202, await res.text());
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor(
    () => worker.logs().some((l) => l.msg.startsWith("alert outbox full")),
    "the worker stops taking frames",
  );
  const held = await stats();
  // A batch taken just before the bound was reached may add its own few.
  assert.ok(held.alerts.outbox < 15, `outbox ${held.alerts.outbox}`);
  const windows = FRAMES - 4;
  assert.ok(held.frames.scored < windows, `scored ${held.frames.scored} of ${windows} windows`);

  sink.answer = 201;
  await waitFor(async () => (await stats()).frames.scored === windows, "every window", 20_000);
  await waitFor(() => sink.delivered.size === windows, "every alert delivered", 20_000);
});
