// The shared registry against a real nats-server: immutable versions, the revision-checked pointer, history, local copies.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { ModelMetadata } from "../../contracts/model.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { activeOrSeed, NatsModelRegistry, NatsRegistryError } from "./nats_registry.ts";
import { RegistryError } from "./registry.ts";
import { STALE_DOWNLOAD_MS, VersionCache } from "./version_cache.ts";

let server: NatsServer;
let nc: NatsConnection;
let v1: ModelFixture;
let v2: ModelFixture;
let other: ModelFixture;
const NAME = "reg_unit";

const files = async (m: ModelFixture) => ({
  onnx: new Uint8Array(await readFile(join(m.dir, `${m.name}.onnx`))),
  meta: JSON.parse(await readFile(join(m.dir, `${m.name}.json`), "utf8")) as ModelMetadata,
});

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  // Same features, other training data: two versions a worker can switch between.
  [v1, v2, other] = await Promise.all([
    trainFixtureModel({ features: 6, name: NAME }),
    trainFixtureModel({ features: 6, name: NAME, frames: 340 }),
    trainFixtureModel({ features: 4, name: NAME }),
  ]);
});

after(async () => {
  await nc?.close();
  await server?.remove();
  await Promise.all([v1, v2, other].map((m) => m?.remove()));
});

const rejectsWith = (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (error: Error & { code?: string }) => {
    assert.equal(error.code, code, error.message);
    return true;
  });

test("NatsModelRegistry publishes immutable versions and records every activation", async () => {
  const registry = await NatsModelRegistry.open(nc, "UNIT");
  const a = await files(v1);
  const b = await files(v2);
  assert.notEqual(a.meta.version, b.meta.version);

  const first = await registry.publish(a.onnx, a.meta, { by: "alice" });
  assert.equal(first.created, true);
  assert.equal(first.activated?.version, a.meta.version, "the first version is activated");
  assert.equal((await registry.publish(a.onnx, a.meta)).created, false, "same bytes: a no-op");
  // The same version with another graph is refused and changes nothing.
  const forged = { ...b.meta, version: a.meta.version };
  await rejectsWith(registry.publish(b.onnx, forged), "version_exists");
  await rejectsWith(
    registry.publish(b.onnx, { ...b.meta, onnx_sha256: "0".repeat(64) }),
    "registry_entry_invalid",
  );
  assert.deepEqual(await registry.versions(NAME), [a.meta.version]);

  const second = await registry.publish(b.onnx, b.meta);
  assert.equal(second.activated, undefined, "not activated while another one is active");
  assert.deepEqual(await registry.versions(NAME), [a.meta.version, b.meta.version]);
  assert.equal((await registry.pointer(NAME))?.version, a.meta.version);

  const to2 = await registry.activate(NAME, b.meta.version, { by: "bob", reason: "retrained" });
  assert.deepEqual([to2.from, to2.version, to2.by], [a.meta.version, b.meta.version, "bob"]);
  const back = await registry.activate(NAME, a.meta.version, { by: "carol" });
  assert.equal(back.from, b.meta.version);
  const history = await registry.activations(NAME);
  assert.deepEqual(
    history.map((h) => [h.version, h.from, h.by]),
    [
      [a.meta.version, null, "alice"],
      [b.meta.version, a.meta.version, "bob"],
      [a.meta.version, b.meta.version, "carol"],
    ],
  );

  await rejectsWith(registry.activate(NAME, "9.9.9", { by: "x" }), "version_not_found");
  await rejectsWith(registry.activate(NAME, "../x", { by: "x" }), "invalid_version");
  await rejectsWith(registry.activate("nope", a.meta.version, { by: "x" }), "model_not_found");
  // Other features: a worker cannot switch to it between two batches.
  const c = await files(other);
  await registry.publish(c.onnx, c.meta);
  await rejectsWith(registry.activate(NAME, c.meta.version, { by: "x" }), "model_incompatible");
  assert.equal((await registry.pointer(NAME))?.version, a.meta.version, "refusals move nothing");
  assert.equal((await registry.activations(NAME)).length, 3);
});

test("NatsModelRegistry refuses the second of two activations that read the same pointer", async () => {
  const registry = await NatsModelRegistry.open(nc, "RACE");
  const a = await files(v1);
  const b = await files(v2);
  await registry.publish(a.onnx, a.meta);
  await registry.publish(b.onnx, b.meta);
  const results = await Promise.allSettled(
    Array.from({ length: 4 }, (_, i) =>
      registry.activate(NAME, i % 2 ? a.meta.version : b.meta.version, { by: `op${i}` }),
    ),
  );
  const refused = results.filter((r) => r.status === "rejected");
  for (const r of refused) {
    assert.ok((r as PromiseRejectedResult).reason instanceof NatsRegistryError);
    assert.equal((r as PromiseRejectedResult).reason.code, "activation_conflict");
  }
  const done = results.filter((r) => r.status === "fulfilled").length;
  assert.ok(done >= 1);
  // Every activation that succeeded is in the history, chained from/to.
  const history = await registry.activations(NAME);
  assert.equal(history.length, 1 + done);
  for (let i = 1; i < history.length; i++) assert.equal(history[i].from, history[i - 1].version);
});

test("activeOrSeed publishes MODEL_DIR's model once when processes start together", {
  timeout: 120_000,
}, async () => {
  const version = (await files(v1)).meta.version;
  const config = { MODEL_DIR: v1.dir, DEFAULT_MODEL_NAME: NAME };
  // Three processes' connections; an object replaced while another one reads it would hang.
  const others = await Promise.all([1, 2].map(() => connect({ servers: server.url })));
  try {
    for (let round = 0; round < 6; round++) {
      const seeded = await Promise.all(
        [nc, ...others].map(async (c, k) =>
          activeOrSeed(await NatsModelRegistry.open(c, `SEED${round}`), config, `p${k}`),
        ),
      );
      assert.deepEqual(
        seeded.map((s) => s.version),
        [version, version, version],
      );
      const registry = await NatsModelRegistry.open(nc, `SEED${round}`);
      assert.equal((await registry.activations(NAME)).length, 1, "activated once");
    }
  } finally {
    await Promise.all(others.map((c) => c.close()));
  }
  // Later starts read the pointer, whatever MODEL_DIR holds.
  const registry = await NatsModelRegistry.open(nc, "SEED0");
  const later = await activeOrSeed(registry, { ...config, MODEL_DIR: v2.dir }, "p3");
  assert.equal(later.version, version);
});

test("VersionCache downloads a version whole and never uses a half-written or altered copy", async () => {
  const registry = await NatsModelRegistry.open(nc, "CACHE");
  const a = await files(v1);
  await registry.publish(a.onnx, a.meta);
  const dir = await mkdtemp(join(tmpdir(), "version-cache-"));
  try {
    // What a process killed mid-download leaves: a dot-folder with part of the graph.
    const partial = join(dir, NAME, `.download-${a.meta.version}-dead`);
    await mkdir(partial, { recursive: true });
    await writeFile(join(partial, `${NAME}.onnx`), a.onnx.subarray(0, 10));
    const died = (Date.now() - STALE_DOWNLOAD_MS - 1000) / 1000;
    await utimes(partial, died, died);
    const cache = new VersionCache(dir, registry);
    await cache.clean();
    assert.deepEqual(await readdir(join(dir, NAME)), []);

    const { ref, meta } = await cache.ensure(NAME, a.meta.version);
    assert.equal(meta.onnx_sha256, a.meta.onnx_sha256);
    assert.deepEqual(new Uint8Array(await readFile(join(ref.dir, `${NAME}.onnx`))), a.onnx);
    // A local copy that no longer verifies is fetched again before use.
    await writeFile(join(ref.dir, `${NAME}.onnx`), new Uint8Array([1, 2, 3]));
    await cache.ensure(NAME, a.meta.version);
    assert.deepEqual(new Uint8Array(await readFile(join(ref.dir, `${NAME}.onnx`))), a.onnx);
    await assert.rejects(cache.ensure(NAME, "7.7.7"), RegistryError);
    assert.deepEqual(await readdir(join(dir, NAME)), [a.meta.version], "no download left behind");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** `registry` whose graph downloads wait until `release()`; `started` resolves when one waits. */
function heldRegistry(registry: NatsModelRegistry) {
  let waiting = () => {};
  let release = () => {};
  const started = new Promise<void>((resolve) => {
    waiting = resolve;
  });
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = Object.create(registry) as NatsModelRegistry;
  held.read = async function heldRead(name, version, kind) {
    if (kind === "onnx") {
      waiting();
      await gate;
    }
    return registry.read(name, version, kind);
  };
  return { held, started, release };
}

test("VersionCache.clean leaves another worker's download in progress in a shared folder alone", async () => {
  const registry = await NatsModelRegistry.open(nc, "CACHE_SHARED");
  const a = await files(v1);
  await registry.publish(a.onnx, a.meta);
  const dir = await mkdtemp(join(tmpdir(), "version-cache-"));
  try {
    const { held, started, release } = heldRegistry(registry);
    const worker1 = new VersionCache(dir, held);
    const loading = worker1.ensure(NAME, a.meta.version);
    await started;
    const [download] = await readdir(join(dir, NAME));
    assert.match(download, /^\.download-/);
    // Worker 2 starts on the same DATA_DIR while worker 1 downloads.
    await new VersionCache(dir, registry).clean();
    assert.ok(await stat(join(dir, NAME, download)), "the download in progress is kept");
    release();
    const { ref, meta } = await loading;
    assert.equal(meta.onnx_sha256, a.meta.onnx_sha256);
    assert.deepEqual(new Uint8Array(await readFile(join(ref.dir, `${NAME}.onnx`))), a.onnx);
    assert.deepEqual(await readdir(join(dir, NAME)), [a.meta.version]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("VersionCache.ensure downloads again, once, when its download folder is removed under it", async () => {
  const registry = await NatsModelRegistry.open(nc, "CACHE_VANISHED");
  const a = await files(v1);
  await registry.publish(a.onnx, a.meta);
  const dir = await mkdtemp(join(tmpdir(), "version-cache-"));
  try {
    const { held, started, release } = heldRegistry(registry);
    const loading = new VersionCache(dir, held).ensure(NAME, a.meta.version);
    await started;
    // What a worker of the previous release did at its start, or an operator clearing DATA_DIR.
    for (const entry of await readdir(join(dir, NAME))) {
      await rm(join(dir, NAME, entry), { recursive: true, force: true });
    }
    release();
    const { ref } = await loading;
    assert.deepEqual(new Uint8Array(await readFile(join(ref.dir, `${NAME}.onnx`))), a.onnx);
    assert.deepEqual(await readdir(join(dir, NAME)), [a.meta.version], "no download left behind");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
