import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { jsonFrame } from "../_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { createRole } from "./create_role.ts";
import type { Role } from "./role_shell.ts";

// The scale-out ingest replica answers a stream's frames as the single process does, also while
// JetStream's acknowledgements are slow (the nats-server paused): the order is decided and
// recorded before the publish is awaited.
let model: ModelFixture;
let server: NatsServer;
let dataDir: string;
let replica: Role;
let clockAt = 0;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "order_12" });
  server = await startNatsServer();
  dataDir = await mkdtemp(join(tmpdir(), "ingest-order-"));
  const config = parseConfig(engineConfigSchema, {
    FRAME_BUS: "nats",
    ENGINE_ROLE: "ingest",
    NATS_URL: server.url,
    NATS_STREAM: "ORDER",
    NATS_PARTITIONS: "1",
    MODEL_DIR: model.dir,
    DEFAULT_MODEL_NAME: model.name,
    DEFAULT_DEVICE: "cpu",
    DATA_DIR: dataDir,
    NESTJS_URL: "http://127.0.0.1:9",
    LOG_LEVEL: "silent",
  });
  replica = createRole({
    config,
    clock: { now: () => clockAt || Date.now() },
    log: createLogger({ service: "engine", level: "silent" }),
  });
  await replica.start();
});
after(async () => {
  await server?.signal("SIGCONT").catch(() => {});
  await replica?.shutdown(1000);
  await server?.remove();
  await model?.remove();
  await rm(dataDir, { recursive: true, force: true });
});

const T0 = Date.now() - 60_000;
async function post(stream: string, timestamp?: number) {
  const res = await replica.app.request("/data-enqueue", {
    method: "POST",
    body: jsonFrame(model.featureNames, model.normalFrame(0), {
      stream_id: stream,
      ...(timestamp === undefined ? {} : { timestamp }),
    }),
  });
  return { status: res.status, body: await res.json() };
}

/** Runs `during` with the nats-server paused, so no publish is acknowledged until it resumes. */
async function paused<T>(during: () => Promise<T>): Promise<T> {
  await server.signal("SIGSTOP");
  try {
    return await during();
  } finally {
    await server.signal("SIGCONT");
  }
}

test("an older frame sent while a newer one awaits its acknowledgement is refused 409, not accepted and dropped", async () => {
  const first = await post("oven", T0);
  assert.equal(first.status, 202, JSON.stringify(first.body));
  // Wrapped: an async function returning the promise would wait for it (and so for the resume).
  const { newer } = await paused(async () => {
    const pending = post("oven", T0 + 2000);
    await new Promise((r) => setTimeout(r, 200));
    const older = await post("oven", T0 + 1000);
    assert.equal(older.status, 409);
    assert.equal(older.body.error, "frame_out_of_order");
    return { newer: pending };
  });
  const answer = await newer;
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  assert.equal(answer.body.status, "accepted");
});

test("a retried recent frame is a duplicate after later frames went through, as in the single process", async () => {
  for (const dt of [0, 1000, 2000]) assert.equal((await post("press", T0 + dt)).status, 202);
  const retry = await post("press", T0 + 1000);
  assert.equal(retry.status, 202);
  assert.equal(retry.body.status, "duplicate");
});

test("another frame at a millisecond already taken is refused 409 frame_timestamp_collision, as in the single process", async () => {
  const send = async (values: ReturnType<typeof model.normalFrame>) => {
    const res = await replica.app.request("/data-enqueue", {
      method: "POST",
      body: jsonFrame(model.featureNames, values, { stream_id: "kiln", timestamp: T0 + 5000 }),
    });
    return { status: res.status, body: await res.json() };
  };
  assert.equal((await send(model.normalFrame(0))).status, 202);
  const other = await send(model.normalFrame(1));
  assert.equal(other.status, 409, JSON.stringify(other.body));
  assert.equal(other.body.error, "frame_timestamp_collision");
  const repeat = await send(model.normalFrame(0));
  assert.equal(repeat.status, 202);
  assert.equal(repeat.body.status, "duplicate");
});

test("frames without a timestamp decoded in the same millisecond get distinct times while acknowledgements are slow", async () => {
  clockAt = Date.now();
  try {
    const { a, b } = await paused(async () => {
      const first = post("line");
      await new Promise((r) => setTimeout(r, 200));
      const second = post("line");
      await new Promise((r) => setTimeout(r, 200));
      return { a: first, b: second };
    });
    const answers = [await a, await b];
    assert.deepEqual(
      answers.map((x) => [x.status, x.body.status]),
      [
        [202, "accepted"],
        [202, "accepted"],
      ],
    );
    assert.notEqual(answers[0].body.timestamp, answers[1].body.timestamp);
  } finally {
    clockAt = 0;
  }
});
