// A version whose graph does not load, under scale-out (real ingest and worker processes, private
// nats-server): the API refuses it before the pointer moves; a pointer moved to it by another tool
// leaves workers starting on the version it replaced, said in GET /models.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { ModelMetadata } from "../contracts/model.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { type EngineProcess, spawnEngine, waitReady } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { NatsModelRegistry } from "./infer/nats_registry.ts";

const NAME = "badv_fixture";
const ADMIN = "admin-token-0123456789";

let server: NatsServer;
let sink: AlertSink;
let v1: ModelFixture;
let meta: ModelMetadata;
let nc: NatsConnection;
const processes: EngineProcess[] = [];
const temp: string[] = [];

before(async () => {
  [server, sink, v1] = await Promise.all([
    startNatsServer(),
    startAlertSink(),
    trainFixtureModel({ features: 12, name: NAME }),
  ]);
  meta = JSON.parse(await readFile(join(v1.dir, `${NAME}.json`), "utf8"));
  nc = await connect({ servers: server.url });
});

after(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await nc?.close();
  await server?.remove();
  await sink?.close();
  await v1?.remove();
  for (const dir of temp) await rm(dir, { recursive: true, force: true });
});

/** A process of the deployment whose stream (and registry) is `stream`. */
async function spawnRole(
  stream: string,
  role: "ingest" | "worker",
  id = "",
): Promise<EngineProcess> {
  const dir = await mkdtemp(join(tmpdir(), "badv-"));
  temp.push(dir);
  const p = spawnEngine("node", {
    ENGINE_ROLE: role,
    FRAME_BUS: "nats",
    NATS_URL: server.url,
    NATS_STREAM: stream,
    NATS_PARTITIONS: "2",
    NATS_LEASE_MS: "3000",
    MODEL_DIR: v1.dir,
    DEFAULT_MODEL_NAME: NAME,
    DEFAULT_DEVICE: "cpu",
    NESTJS_URL: sink.origin,
    INGEST_WORKERS: "0",
    ADMIN_TOKEN: ADMIN,
    ALERT_MODE: "frame",
    DATA_DIR: dir,
    ...(id ? { NATS_WORKER_ID: id } : {}),
  });
  processes.push(p);
  return p;
}

async function ready(p: EngineProcess): Promise<number> {
  const port = await p.port();
  await waitReady(port);
  return port;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers as the roles serve them
async function call(port: number, path: string, body?: unknown): Promise<[number, any]> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: body ? "POST" : "GET",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  return [res.status, await res.json()];
}

/** v1's graph published as `version` with metadata naming an input the graph does not have. */
async function publishBroken(registry: NatsModelRegistry, version: string, activate = false) {
  const onnx = await registry.read(NAME, meta.version, "onnx");
  // As `npm run train -- --publish URL --version V --activate` publishes: no load tried.
  return registry.publish(
    onnx,
    { ...meta, version, input_name: "no_such_input" },
    { activate, by: "train", reason: "published by a tool" },
  );
}

test("scale-out: an ingest replica refuses a version that does not load with 422 model_load_failed, before the pointer moves", async () => {
  const registry = await NatsModelRegistry.open(nc, "BADV1");
  const ingest = await spawnRole("BADV1", "ingest");
  const worker = await spawnRole("BADV1", "worker", "badv-1");
  const [port] = await Promise.all([ready(ingest), ready(worker)]);
  await publishBroken(registry, "2.0.0-bad");
  const [status, refused] = await call(port, `/models/${NAME}/activate`, {
    version: "2.0.0-bad",
    by: "ops",
  });
  assert.deepEqual([status, refused.error], [422, "model_load_failed"], JSON.stringify(refused));
  assert.match(refused.message, /has inputs \[.*\].*metadata says no_such_input/);
  assert.equal((await registry.pointer(NAME))?.version, meta.version, "the pointer did not move");
  // So a worker starting now loads what the pointer names.
  const next = await spawnRole("BADV1", "worker", "badv-2");
  await ready(next);
  const [, stats] = await call(await next.port(), "/stats");
  assert.equal(stats.model.active_version, meta.version);
});

test("scale-out: a worker whose pointer names a version that does not load starts on the version it replaced, said in GET /models; with none that loads it exits", async () => {
  const registry = await NatsModelRegistry.open(nc, "BADV2");
  const ingest = await spawnRole("BADV2", "ingest");
  const first = await spawnRole("BADV2", "worker", "badv-1");
  const [port] = await Promise.all([ready(ingest), ready(first)]);
  // Moved by a tool that does not try it: a worker starting now serves the version it replaced.
  await publishBroken(registry, "2.0.1-bad", true);
  const second = await spawnRole("BADV2", "worker", "badv-2");
  const exitedEarly = second.exited.then((code) => `exited ${code}`);
  const started = await Promise.race([ready(second).then(() => "ready"), exitedEarly]);
  assert.equal(started, "ready", second.output().slice(-2000));
  const [, stats] = await call(await second.port(), "/stats");
  assert.equal(stats.model.active_version, meta.version);
  const loud = second.logs().find((l) => l.level === "error" && /NOT following/.test(l.msg));
  assert.ok(loud, "an error log says the pointer is not followed");
  assert.deepEqual([loud.version, loud.serving], ["2.0.1-bad", meta.version]);
  // The replica's GET /models says which workers do not serve the pointer's version, and why.
  const listed = await waitFor(async () => {
    const [, body] = await call(port, "/models");
    const pointer = body.models[0].registry_pointer;
    return /badv-1/.test(pointer?.error) && /badv-2/.test(pointer?.error) ? body.models[0] : null;
  }, "GET /models naming both workers that do not follow the pointer");
  assert.equal(listed.activation.version, "2.0.1-bad");
  assert.deepEqual(
    [listed.registry_pointer.version, listed.registry_pointer.following],
    ["2.0.1-bad", "refused"],
  );
  assert.match(listed.registry_pointer.error, /badv-2 serves .*no_such_input/);

  // With no version behind it that loads, a worker cannot start: it exits saying why.
  await publishBroken(registry, "2.0.2-bad", true);
  const third = await spawnRole("BADV2", "worker", "badv-3");
  assert.notEqual(await third.exited, 0);
  assert.match(
    third.output(),
    /cannot load model badv_fixture: .*no_such_input.*nor does the version it replaced, 2\.0\.1-bad, load/,
  );

  // Repaired as the README says, by activating the version the workers serve: the versions that
  // never served are no rollback target, and the answer's `from` is the recorded one's.
  await waitFor(async () => {
    const [, body] = await call(port, "/models");
    return /2\.0\.2-bad/.test(body.models[0].registry_pointer?.version ?? "");
  }, "GET /models to show the pointer on 2.0.2-bad");
  const [status, repaired] = await call(port, `/models/${NAME}/activate`, {
    version: meta.version,
    by: "ops",
  });
  assert.equal(status, 200, JSON.stringify(repaired));
  const pointer = await registry.pointer(NAME);
  assert.deepEqual(repaired.activation, pointer);
  assert.equal(pointer?.from, null, "its rollback target before them: none (the first version)");
  assert.equal(repaired.from, meta.version);
});
