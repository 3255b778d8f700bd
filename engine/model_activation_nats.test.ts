// An ingest replica's pointer follower against a real nats-server: a version it failed to read
// once (a request timing out) is tried again, one it cannot serve is refused for good.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { HttpError } from "../contracts/error.ts";
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

/** `meta`'s graph (or `graph`) published again as `version`, its metadata changed by `change`. */
async function publishVariant(
  registry: NatsModelRegistry,
  meta: ModelMetadata,
  version: string,
  change: Partial<ModelMetadata>,
  graph?: Uint8Array,
) {
  const onnx = graph ?? (await registry.read(meta.name, meta.version, "onnx"));
  const onnx_sha256 = createHash("sha256").update(onnx).digest("hex");
  await registry.publish(onnx, { ...meta, version, onnx_sha256, ...change });
}

function replicaOf(registry: NatsModelRegistry, leases: KV, meta: ModelMetadata) {
  let served: ModelMetadata[] = [meta];
  const models = createNatsModelActivation({
    config: { NATS_LEASE_MS: 200 } as never,
    log: createLogger({ service: "engine", level: "silent" }),
    registry,
    leases,
    served: () => served,
    use: (next) => {
      served = [next];
    },
    routes: () => ["*"],
    streams: () => 0,
  });
  return { models, served: () => served };
}

test("a replica refuses with 422 model_load_failed, and leaves the pointer alone, a version whose graph does not load", async () => {
  const registry = await NatsModelRegistry.open(nc, "TRIAL1");
  const dir = join(root, "v1-trial");
  const v1 = await trainInto(dir, plantFrames(600, 1), true);
  await registry.publishFromDisk(await new ModelRegistry(dir).resolve(NAME));
  // Intact in the registry (the graph's sha256 is the metadata's), but no loader takes either.
  await publishVariant(registry, v1.meta, "2.0.0-bad", { input_name: "no_such_input" });
  await publishVariant(registry, v1.meta, "2.0.1-junk", {}, new TextEncoder().encode("no onnx"));
  const pointer = await registry.pointer(NAME);
  const records = await registry.activations(NAME);
  const { models, served } = replicaOf(registry, await kvBucket(nc, "TRIAL1_leases"), v1.meta);
  for (const [version, problem] of [
    ["2.0.0-bad", /has inputs \[.*\].*metadata says no_such_input/],
    ["2.0.1-junk", /cannot open/],
  ] as const) {
    const refused = await models.activate(NAME, { version, by: "ops" }).then(
      () => assert.fail(`${version} activated`),
      (error: HttpError) => error,
    );
    assert.deepEqual([refused.status, refused.code], [422, "model_load_failed"], version);
    assert.match(
      refused.message,
      new RegExp(`${NAME}@${version.replace(/\./g, "\\.")} cannot be loaded`),
    );
    assert.match(refused.message, problem);
  }
  assert.deepEqual(await registry.pointer(NAME), pointer, "the pointer did not move");
  assert.deepEqual(await registry.activations(NAME), records, "nothing recorded");
  assert.equal(served()[0].version, v1.meta.version, "still stamping v1");
  // A version that loads still goes through.
  await publishVariant(registry, v1.meta, "2.0.2-good", {});
  const answer = await models.activate(NAME, { version: "2.0.2-good", by: "ops" });
  assert.equal(answer.status, "active");
  assert.equal((await registry.pointer(NAME))?.version, "2.0.2-good");
});

test("a replica's listing shows the pointer's record as the activation without reading the history", async () => {
  const registry = await NatsModelRegistry.open(nc, "LIST1");
  const dir = join(root, "v1-list");
  const v1 = await trainInto(dir, plantFrames(600, 1), true);
  await registry.publishFromDisk(await new ModelRegistry(dir).resolve(NAME));
  await publishVariant(registry, v1.meta, "2.0.0", {});
  await registry.activate(NAME, "2.0.0", { by: "alice", reason: "newer" });
  await registry.activate(NAME, v1.meta.version, { by: "bob", reason: "back" });
  const pointer = await registry.pointer(NAME);
  // A history line the pointer never reached (its writer's pointer write did not land).
  const stray = { ...pointer, version: "2.0.0", by: "mallory", reason: "lost the race" };
  await registry.kv.put(`history.${NAME}.999999999999`, JSON.stringify(stray));
  // The history may grow to thousands of records, each a KV read: GET /models must not read it.
  registry.activations = () => assert.fail("GET /models read the whole history");
  const { models } = replicaOf(registry, await kvBucket(nc, "LIST1_leases"), v1.meta);
  const [listed] = await models.list();
  assert.deepEqual(listed.activation, pointer);
  assert.equal(listed.registry_pointer, undefined, "the pointer names the version served");
});

test("the registry reads the whole activation history in one pass, not one KV request per record", async () => {
  const registry = await NatsModelRegistry.open(nc, "HISTORY1");
  const dir = join(root, "v1-history");
  const v1 = await trainInto(dir, plantFrames(600, 1), true);
  await registry.publishFromDisk(await new ModelRegistry(dir).resolve(NAME));
  await publishVariant(registry, v1.meta, "2.0.0", {});
  for (let i = 0; i < 20; i++) {
    await registry.activate(NAME, i % 2 ? v1.meta.version : "2.0.0", { by: "ops", reason: `${i}` });
  }
  const get = registry.kv.get.bind(registry.kv);
  let gets = 0;
  registry.kv.get = (key, options) => {
    gets++;
    return get(key, options);
  };
  const history = await registry.activations(NAME);
  assert.deepEqual(
    history.map((a) => a.reason),
    ["first version", ...Array.from({ length: 20 }, (_, i) => `${i}`)],
  );
  assert.ok(gets <= 1, `${gets} KV gets for 21 records`);
});
