// An ingest replica's pointer follower against a real nats-server: a version it failed to read
// once (a request timing out) is tried again, one it cannot serve is refused for good.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { ModelMetadata } from "../contracts/model.ts";
import { NAME, plantFrames, trainInto } from "../models/retrain/_test/plant_history.ts";
import { createLogger } from "../telemetry/logger.ts";
import { kvBucket } from "./_buckets.ts";
import { waitFor } from "./_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "./bus/_test/nats_server.ts";
import { FOLLOW_RETRY_FIRST_MS } from "./infer/follow_refusals.ts";
import { NatsModelRegistry } from "./infer/nats_registry.ts";
import { ModelRegistry } from "./infer/registry.ts";
import { createNatsModelActivation } from "./model_activation_nats.ts";

let server: NatsServer;
let nc: NatsConnection;
let root: string;

before(async () => {
  [server, root] = await Promise.all([startNatsServer(), mkdtemp(join(tmpdir(), "follow-"))]);
  nc = await connect({ servers: server.url });
});
after(async () => {
  await nc?.close();
  await server?.remove();
  await rm(root, { recursive: true, force: true });
});

test("a replica follows a version whose first read failed, on a later try, without a new activation", async () => {
  const registry = await NatsModelRegistry.open(nc, "FOLLOW1");
  const v1 = await trainInto(join(root, "v1"), plantFrames(600, 1), true);
  const v2 = await trainInto(join(root, "v2"), plantFrames(600, 2), true);
  await registry.publishFromDisk(await new ModelRegistry(join(root, "v1")).resolve(NAME));
  await registry.publishFromDisk(await new ModelRegistry(join(root, "v2")).resolve(NAME), {
    activate: false,
  });
  await registry.activate(NAME, v1.meta.version, { by: "test" });
  // The replica's reads go through the real registry, the first read of v2 failing as a
  // request that timed out would.
  let failures = 0;
  const flaky = Object.create(registry) as NatsModelRegistry;
  flaky.metadata = async (name, version) => {
    if (version === v2.meta.version && failures++ === 0) throw new Error("TIMEOUT");
    return registry.metadata(name, version);
  };
  let served: ModelMetadata[] = [v1.meta];
  const errors: string[] = [];
  const log = createLogger({
    service: "engine",
    level: "info",
    write: (line) => {
      const record = JSON.parse(line);
      if (record.level === "error") errors.push(record.msg);
    },
  });
  const models = createNatsModelActivation({
    config: {} as never,
    log,
    registry: flaky,
    leases: await kvBucket(nc, "FOLLOW1_leases"),
    served: () => served,
    use: (meta) => {
      served = [meta];
    },
    routes: () => ["*"],
    streams: () => 0,
  });
  const stop = models.follow(0);
  try {
    await registry.activate(NAME, v2.meta.version, { by: "alice", reason: "newer" });
    await waitFor(() => failures >= 1 || undefined, "the first read of v2 failed");
    assert.equal(served[0].version, v1.meta.version, "still stamping v1 after the failure");
    assert.match(errors[0], /could not be followed yet/);
    const started = Date.now();
    await waitFor(
      () => served[0].version === v2.meta.version || undefined,
      "v2 followed on a later try",
      4 * FOLLOW_RETRY_FIRST_MS,
    );
    assert.ok(Date.now() - started >= FOLLOW_RETRY_FIRST_MS / 2, "after a wait, not at once");
  } finally {
    stop();
  }
});

test("a replica's activation of the version already active answers unchanged and moves nothing; its listing names the streams under both names", async () => {
  const registry = await NatsModelRegistry.open(nc, "FOLLOW3");
  const v1 = await trainInto(join(root, "v1-unchanged"), plantFrames(600, 1), true);
  await registry.publishFromDisk(await new ModelRegistry(join(root, "v1-unchanged")).resolve(NAME));
  const pointer = await registry.pointer(NAME);
  const records = await registry.activations(NAME);
  const models = createNatsModelActivation({
    config: {} as never,
    log: createLogger({ service: "engine", level: "silent" }),
    registry,
    leases: await kvBucket(nc, "FOLLOW3_leases"),
    served: () => [v1.meta],
    use: () => assert.fail("nothing to switch to"),
    routes: () => ["*"],
    streams: () => 3,
  });
  const answer = await models.activate(NAME, { version: v1.meta.version, by: "Ana" });
  assert.equal(answer.unchanged, true);
  assert.deepEqual([answer.from, answer.version], [v1.meta.version, v1.meta.version]);
  assert.deepEqual(answer.activation, pointer);
  assert.deepEqual(await registry.pointer(NAME), pointer, "the pointer did not move");
  assert.deepEqual(await registry.activations(NAME), records, "nothing recorded");
  const [listed] = await models.list();
  assert.deepEqual([listed.live_streams, listed.streams], [3, 3]);
});
