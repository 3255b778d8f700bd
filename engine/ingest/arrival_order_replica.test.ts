// The scale-out ingest replica admits and publishes a stream's frames in the order they arrived, against a real nats-server.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createLogger } from "../../telemetry/logger.ts";
import { gzip, jsonFrame } from "../_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { roleConfig } from "../_test/role_config.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { frameMessageId } from "../bus/partition_of.ts";
import { createIngestRole } from "../roles/ingest_role.ts";
import { type RunningServer, serve } from "../serve.ts";
import { sendSlowThenFast } from "./_arrivals_test_kit.ts";

const STREAM = "ARRIVALS";

let server: NatsServer;
let model: ModelFixture;
let dataDir: string;
let ingest: ReturnType<typeof createIngestRole>;
let http: RunningServer;
let nc: NatsConnection;

before(async () => {
  [server, model] = await Promise.all([
    startNatsServer(),
    trainFixtureModel({ features: 6, name: "arrivals_replica" }),
  ]);
  dataDir = await mkdtemp(join(tmpdir(), "arrivals-replica-"));
  const config = roleConfig("ingest", server.url, model, {
    NATS_STREAM: STREAM,
    NATS_PARTITIONS: "1",
    DATA_DIR: dataDir,
    NESTJS_URL: "http://127.0.0.1:9",
    INGEST_WORKERS: "2",
    MAX_DECOMPRESSED_BYTES: String(64 * 1024 * 1024),
  });
  ingest = createIngestRole({ config, log: createLogger({ service: "engine", level: "silent" }) });
  await ingest.start();
  http = await serve(ingest.app.fetch, { hostname: "127.0.0.1", port: 0 });
  nc = await connect({ servers: server.url, timeout: 2000 });
});

after(async () => {
  await http?.close(AbortSignal.timeout(1000));
  await ingest?.shutdown(2000);
  await nc?.close();
  await server?.remove();
  await model?.remove();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test("ingest replica admits and publishes a stream's frames in the order their bodies arrived, not the order their decodes ended", async () => {
  const base = Date.UTC(2026, 0, 3);
  const frame = (step: number, padding: number) =>
    gzip(
      `{${" ".repeat(padding)}${jsonFrame(model.featureNames, model.normalFrame(step), {
        stream_id: "line-r",
        timestamp: base + step * 1000,
      }).slice(1)}`,
    );
  const rounds = 4;
  // The replica counts an upload in flight from its start to its answer.
  const inFlight = async () =>
    (await (await fetch(`http://127.0.0.1:${http.port}/stats`)).json()).queue.depth as number;
  const answers = await sendSlowThenFast(http.port, inFlight, frame, rounds);
  assert.deepEqual(
    answers.map((a) => `${a.status} ${a.text}`),
    answers.map(
      (_, step) =>
        `202 ${JSON.stringify({ status: "accepted", stream_id: "line-r", timestamp: new Date(base + step * 1000).toISOString() })}`,
    ),
  );
  // On the bus in the same order.
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(STREAM);
  const ids: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const message = await jsm.streams.getMessage(STREAM, { seq });
    ids.push(message?.header?.get("Nats-Msg-Id") ?? "");
  }
  assert.deepEqual(
    ids,
    answers.map((_, step) => frameMessageId("line-r", base + step * 1000)),
  );
});
