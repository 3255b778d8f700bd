// The shared registry against a real nats-server: immutable versions, the revision-checked pointer, history, local copies.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { JsHeaders, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { Base64UrlPaddedCodec } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import type { ModelMetadata } from "../../contracts/model.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import {
  activeOrSeed,
  NatsModelRegistry,
  NatsRegistryError,
  type NatsRegistryHooks,
} from "./nats_registry.ts";
import { KEEP_VERSIONS } from "./prune_policy.ts";
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

const HOUR = 60 * 60_000;
const DAY = 24 * HOUR;

/**
 * Dates object `object` of `registry` (`<name>/<version>/<name>.json`) `ago` ms back, as `utimes`
 * does a folder on disk: its metadata entry written again with an older `mtime`, as a publisher
 * whose clock said so would have written it.
 */
async function age(registry: NatsModelRegistry, object: string, ago: number): Promise<void> {
  const subject = `$O.${registry.bucket}.M.${Base64UrlPaddedCodec.encode(object)}`;
  const jsm = await jetstreamManager(nc);
  const stored = await jsm.streams.getMessage(`OBJ_${registry.bucket}`, { last_by_subj: subject });
  assert.ok(stored, `no object ${object}`);
  const info = { ...stored.json<Record<string, unknown>>() };
  info.mtime = new Date(Date.now() - ago).toISOString();
  const h = headers();
  h.set(JsHeaders.RollupHdr, JsHeaders.RollupValueSubject);
  await jetstream(nc).publish(subject, JSON.stringify(info), { headers: h });
}

/** Dates version `version` of NAME in `registry` `ago` ms back. */
const ageVersion = (registry: NatsModelRegistry, version: string, ago: number) =>
  age(registry, `${NAME}/${version}/${NAME}.json`, ago);

/** A promise with its resolve, to hold a step until the test lets it go on. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

test("NatsModelRegistry prunes old versions beyond the newest N, never the active one, its rollback target or a recent one", async () => {
  const registry = await NatsModelRegistry.open(nc, "PRUNE", { keepVersions: 2 });
  const a = await files(v1);
  const as = (version: string): ModelMetadata => ({ ...a.meta, version });
  for (const v of ["1", "2", "3", "4", "5", "6"]) {
    assert.deepEqual((await registry.publish(a.onnx, as(v))).pruned, [], "all written just now");
  }
  await registry.putReport(NAME, "1", { decision: "held" });
  // Published in this order (4 and 6 within the last day); then 3 active, rolled back to 2.
  const ages: Record<string, number> = { 1: 10, 2: 9, 3: 8, 5: 7, 6: 3 / 24, 4: 2 / 24 };
  for (const [v, days] of Object.entries(ages)) await ageVersion(registry, v, days * DAY);
  await registry.activate(NAME, "3", { by: "ops", reason: "retrained" });
  await registry.activate(NAME, "2", { by: "ops", reason: "rollback" });
  assert.deepEqual(await registry.versions(NAME), ["1", "2", "3", "5", "6", "4"]);

  const written = await registry.publish(a.onnx, as("7"));
  // Newest two: 4 and 7. Kept besides: 2 (active), 3 (the rollback target), 6 (recent).
  assert.deepEqual(written.pruned, ["1", "5"]);
  assert.deepEqual(await registry.versions(NAME), ["2", "3", "6", "4", "7"]);
  assert.equal((await registry.pointer(NAME))?.version, "2");
  const records = await registry.pruned(NAME);
  assert.deepEqual(
    records.map((r) => [r.name, r.version]),
    [
      [NAME, "1"],
      [NAME, "5"],
    ],
  );
  assert.ok(records.every((r) => Date.parse(r.written_at) < Date.parse(r.at) - 6 * DAY));
  assert.match(records[0].reason, /beyond the newest 2 versions/);
  // The graphs are gone too; the history and a pruned version's report stay.
  const left = (await registry.objects.list()).filter((o) => !o.deleted).map((o) => o.name);
  assert.ok(
    !left.some((o) => o.startsWith(`${NAME}/1/${NAME}.onnx`) || o.startsWith(`${NAME}/5/`)),
  );
  assert.deepEqual(await registry.report(NAME, "1"), { decision: "held" });
  assert.equal((await registry.activations(NAME)).length, 3);
  await rejectsWith(registry.activate(NAME, "1", { by: "ops" }), "version_not_found");
  assert.equal((await registry.pointer(NAME))?.version, "2", "a refused activation moves nothing");
  // Nothing more to prune: the next publish removes nothing, the records stay.
  assert.deepEqual((await registry.publish(a.onnx, as("7"))).pruned, []);
  assert.equal((await registry.pruned(NAME)).length, 2);
  // A pruned version can be published again at once (its publish claim went with it).
  assert.equal((await registry.publish(a.onnx, as("1"))).created, true);
  assert.throws(
    () =>
      new NatsModelRegistry(registry.objects, registry.kv, registry.bucket, { keepVersions: 0 }),
    RangeError,
  );
});

test("NatsModelRegistry keeps KEEP_VERSIONS versions by default and removes a graph left without metadata once an hour old", async () => {
  const registry = await NatsModelRegistry.open(nc, "PRUNE_DEFAULT");
  const a = await files(v1);
  const as = (version: string): ModelMetadata => ({ ...a.meta, version });
  const versions = Array.from({ length: KEEP_VERSIONS + 2 }, (_, i) => `1.${i}.0`);
  for (const v of versions) await registry.publish(a.onnx, as(v));
  for (const [i, v] of versions.entries()) await ageVersion(registry, v, (100 - i) * DAY);
  // A publish that died between graph and metadata, two hours ago, and one still uploading.
  await registry.objects.putBlob({ name: `${NAME}/0.9.0/${NAME}.onnx` }, a.onnx);
  await age(registry, `${NAME}/0.9.0/${NAME}.onnx`, 2 * HOUR);
  await registry.objects.putBlob({ name: `${NAME}/0.9.1/${NAME}.onnx` }, a.onnx);

  // 1.0.0 is active (the first version), so of the three oldest 1.1.0 and 1.2.0 go.
  const written = await registry.publish(a.onnx, as("2.0.0"));
  assert.deepEqual(written.pruned, ["1.1.0", "1.2.0"]);
  assert.deepEqual(await registry.versions(NAME), ["1.0.0", ...versions.slice(3), "2.0.0"]);
  const graph = (version: string) => registry.objects.info(`${NAME}/${version}/${NAME}.onnx`);
  assert.equal((await graph("0.9.0"))?.deleted, true, "stale: removed");
  assert.equal((await graph("0.9.1"))?.deleted, false, "young: left");
});

describe("NatsModelRegistry pruning racing an activation in another writer", () => {
  /**
   * A registry keeping 1 version, holding 1, 2, 3 (all over a day old), 3 active from 2: the
   * next publish prunes 1 unless something activates it. `hooks` are filled in by each test.
   */
  async function racing(prefix: string, hooks: NatsRegistryHooks) {
    const registry = await NatsModelRegistry.open(nc, prefix, { keepVersions: 1, hooks });
    const a = await files(v1);
    const as = (version: string): ModelMetadata => ({ ...a.meta, version });
    for (const v of ["1", "2", "3"]) await registry.publish(a.onnx, as(v));
    for (const [v, days] of [
      ["1", 10],
      ["2", 9],
      ["3", 8],
    ] as const) {
      await ageVersion(registry, v, days * DAY);
    }
    await registry.activate(NAME, "2", { by: "ops" });
    await registry.activate(NAME, "3", { by: "ops" });
    const publish4 = () => registry.publish(a.onnx, as("4"));
    const prunedVersions = async () => (await registry.pruned(NAME)).map((r) => r.version);
    return { registry, publish4, prunedVersions };
  }

  test("pruning leaves a version an activation moved the pointer to after the prune took it", {
    timeout: 30_000,
  }, async () => {
    const hooks: NatsRegistryHooks = {};
    const { registry, publish4, prunedVersions } = await racing("PRUNE_RACE1", hooks);
    let rollback: Promise<unknown> | undefined;
    const steps: string[] = [];
    hooks.pruneLocked = async (_, version) => {
      if (version !== "1") return;
      steps.push("prune locked 1");
      rollback = registry.activate(NAME, "1", { by: "ops", reason: "rollback" });
      await waitFor(
        async () => (await registry.pointer(NAME))?.version === "1",
        "the pointer on 1",
      );
      steps.push("pointer written");
    };
    const written = await publish4();
    const activation = (await rollback) as { version: string; from: string };

    assert.deepEqual(steps, ["prune locked 1", "pointer written"]);
    assert.deepEqual([activation.version, activation.from], ["1", "3"]);
    // 1 active now, 3 the rollback target, 4 the newest: 2 goes.
    assert.deepEqual(written.pruned, ["2"]);
    assert.deepEqual(await registry.versions(NAME), ["1", "3", "4"]);
    assert.equal((await registry.metadata(NAME, "1")).version, "1", "the active one loads");
    assert.deepEqual(await prunedVersions(), ["2"], "no record of a pruning that did not happen");
  });

  test("an activation that moves the pointer after the prune read it fails with version_not_found and puts the previous version back", {
    timeout: 30_000,
  }, async () => {
    const verified = gate();
    const release = gate();
    const hooks: NatsRegistryHooks = {};
    const { registry, publish4, prunedVersions } = await racing("PRUNE_RACE2", hooks);
    const before = await registry.pointer(NAME);
    hooks.activateVerified = async (_, version) => {
      if (version !== "1") return;
      verified.open();
      await release.opened;
    };
    const rollback = registry.activate(NAME, "1", { by: "ops", reason: "rollback" });
    await verified.opened;
    assert.deepEqual((await publish4()).pruned, ["1"]);
    release.open();

    await rejectsWith(rollback, "version_not_found");
    const pointer = await registry.pointer(NAME);
    assert.deepEqual([pointer?.version, pointer?.from], [before?.version, before?.from]);
    assert.match(pointer?.reason ?? "", /put back: 1 was pruned/);
    assert.equal((await registry.metadata(NAME, "3")).version, "3", "the active one loads");
    assert.deepEqual(await prunedVersions(), ["1"]);
    // The attempt and the putting back stay in the history, chained.
    const history = await registry.activations(NAME);
    assert.deepEqual(
      history.slice(-2).map((h) => [h.version, h.from]),
      [
        ["1", "3"],
        ["3", "2"],
      ],
    );
  });

  test("an activation that moves the pointer while a prune that read it first removes the version waits for it, then puts the previous version back", {
    timeout: 30_000,
  }, async () => {
    const hooks: NatsRegistryHooks = {};
    const { registry, publish4, prunedVersions } = await racing("PRUNE_RACE3", hooks);
    let rollback: Promise<unknown> | undefined;
    hooks.pruneDecided = async (_, version) => {
      if (version !== "1") return;
      rollback = registry.activate(NAME, "1", { by: "ops", reason: "rollback" });
      // Its pointer is written while the prune, holding 1, has yet to remove it.
      await waitFor(
        async () => (await registry.pointer(NAME))?.version === "1",
        "the pointer on 1",
      );
    };
    assert.deepEqual((await publish4()).pruned, ["1"]);
    assert.ok(rollback);
    await rejectsWith(rollback, "version_not_found");
    const pointer = await registry.pointer(NAME);
    assert.deepEqual([pointer?.version, pointer?.from], ["3", "2"]);
    assert.deepEqual(await registry.versions(NAME), ["2", "3", "4"]);
    assert.deepEqual(await prunedVersions(), ["1"]);
  });

  test("a publish prunes nothing while another writer holds the prune lock, and takes a stale one over", {
    timeout: 30_000,
  }, async () => {
    const { registry, publish4, prunedVersions } = await racing("PRUNE_LOCK", {});
    const held = (ago: number) =>
      JSON.stringify({ version: null, at: new Date(Date.now() - ago).toISOString() });
    await registry.kv.put(`pruning.${NAME}`, held(1000));
    assert.deepEqual((await publish4()).pruned, [], "another writer prunes now");
    assert.deepEqual(await registry.versions(NAME), ["1", "2", "3", "4"]);
    // Not renewed for two minutes: a writer that died.
    await registry.kv.put(`pruning.${NAME}`, held(2 * 60_000));
    assert.deepEqual((await publish4()).pruned, ["1"]);
    assert.deepEqual(await prunedVersions(), ["1"]);
    assert.equal((await registry.kv.get(`pruning.${NAME}`))?.operation, "DEL", "let go");
  });
});

test("NatsModelRegistry.activate with the version serving keeps a version that never served out of the rollback target", async () => {
  const registry = await NatsModelRegistry.open(nc, "SERVING");
  const a = await files(v1);
  const b = await files(v2);
  await registry.publish(a.onnx, a.meta);
  await registry.publish(b.onnx, b.meta);
  const bad = new TextEncoder().encode("not an onnx graph");
  const garbage = {
    ...b.meta,
    version: "garbage",
    onnx_sha256: createHash("sha256").update(bad).digest("hex"),
  };
  await registry.publish(bad, garbage);
  await registry.activate(NAME, b.meta.version, { by: "ana" });
  // Another tool moves the pointer; the workers refuse it and serve b on.
  await registry.activate(NAME, "garbage", { by: "cli" });
  const repaired = await registry.activate(NAME, b.meta.version, {
    by: "ana",
    serving: b.meta.version,
  });
  assert.equal(repaired.from, a.meta.version, "b's rollback target before garbage");
  await registry.activate(NAME, "garbage", { by: "cli" });
  const moved = await registry.activate(NAME, a.meta.version, {
    by: "ana",
    serving: b.meta.version,
  });
  assert.equal(moved.from, b.meta.version, "the version serving, not garbage");
  // Without it (a tool that does not serve), the pointer's version as before.
  assert.equal((await registry.activate(NAME, b.meta.version, { by: "cli" })).from, a.meta.version);
});
