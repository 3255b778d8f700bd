import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdir, readdir, readFile, rm, stat, truncate, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import {
  type Activation,
  ModelRegistry,
  type Pruning,
  type RegistryError,
  type RegistryHooks,
  STALE_WRITE_MS,
  verifyVersion,
} from "./registry.ts";

/** Sets the modification time of `path` to `ago` ms before now. */
async function age(path: string, ago: number): Promise<void> {
  const at = (Date.now() - ago) / 1000;
  await utimes(path, at, at);
}

const HOUR = 60 * 60_000;
const DAY = 24 * HOUR;

/** Resolves once `check` holds, polled every few ms; throws after 10 s. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = AbortSignal.timeout(10_000);
  while (!(await check())) {
    if (deadline.aborted) throw new Error(`timed out waiting until ${what}`);
    await delay(5);
  }
}

/** A promise with its resolve, to hold a step until the test lets it go on. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

/**
 * A child process writing a 128 MiB version of `meta` into `dir`: `node --import tsx` running
 * `ModelRegistry.write`, as `npm run retrain` does.
 */
function writeInChild(dir: string, meta: ModelMetadata) {
  const code = `
    const { ModelRegistry } = await import(${JSON.stringify(new URL("./registry.ts", import.meta.url).href)});
    const [dir, meta] = process.argv.slice(1);
    await new ModelRegistry(dir).write(new Uint8Array(128 * 2 ** 20).fill(7), JSON.parse(meta), { activate: false });`;
  return spawn(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", code, dir, JSON.stringify(meta)],
    { stdio: "ignore" },
  );
}

describe("modelRegistry", () => {
  let fixture: ModelFixture;
  let onnx: Uint8Array;
  let meta: ModelMetadata;
  let n = 0;
  /** A fresh registry folder inside the fixture's temporary folder. */
  const fresh = async () => {
    const dir = join(fixture.dir, `registry-${n++}`);
    await mkdir(dir);
    return new ModelRegistry(dir);
  };
  /** The fixture's model as another version (same graph, another version string). */
  const as = (version: string): ModelMetadata => ({ ...meta, version });

  before(async () => {
    fixture = await trainFixtureModel({ features: 6, name: "boiler" });
    onnx = await readFile(join(fixture.dir, "boiler.onnx"));
    meta = parseModelMetadata(JSON.parse(await readFile(join(fixture.dir, "boiler.json"), "utf8")));
  });
  after(() => fixture.remove());

  test("reads the flat layout as a model with one version, active", async () => {
    const registry = new ModelRegistry(fixture.dir);
    const model = await registry.model("boiler");
    assert.deepEqual(model, {
      name: "boiler",
      layout: "flat",
      versions: [meta.version],
      active: meta.version,
    });
    const ref = await registry.resolve("boiler");
    assert.equal(ref.dir, fixture.dir);
    await assert.rejects(
      registry.model("pump"),
      (e: RegistryError) => e.code === "model_not_found",
    );
  });

  test("lists flat models and registry folders holding a version, not other folders; a flat model's new metadata is read again", async () => {
    const registry = await fresh();
    // MODEL_DIR=models, the default outside `npm start`, also holds the training code's folders.
    await mkdir(join(registry.dir, "signal"));
    await writeFile(join(registry.dir, "signal", "plant.ts"), "");
    await mkdir(join(registry.dir, "eval", "real"), { recursive: true });
    await writeFile(join(registry.dir, "boiler.onnx"), onnx);
    const json = join(registry.dir, "boiler.json");
    await writeFile(json, JSON.stringify(meta));
    await registry.write(onnx, { ...meta, name: "pump", version: "2.0.0" }, { activate: true });
    const listed = (await registry.list()).map((m) => [m.name, m.layout, m.versions]);
    assert.deepEqual(listed, [
      ["boiler", "flat", [meta.version]],
      ["pump", "registry", ["2.0.0"]],
    ]);
    // The flat model's metadata replaced (another size): its new version is listed.
    await writeFile(json, JSON.stringify({ ...meta, version: "9.9.9-replaced" }));
    assert.deepEqual((await registry.model("boiler")).versions, ["9.9.9-replaced"]);
  });

  test("writes versions immutably, activates the first, records every activation and a rollback", async () => {
    const registry = await fresh();
    const first = await registry.write(onnx, as("1.0.0"));
    assert.equal(first.created, true);
    assert.equal(first.activated?.version, "1.0.0");
    assert.equal(first.activated?.from, null);
    const second = await registry.write(onnx, as("1.1.0"));
    assert.equal(second.activated, undefined, "a later version waits for --activate");
    assert.equal((await registry.model("boiler")).active, "1.0.0");
    // The same version again: a no-op; another graph under it: refused.
    assert.equal((await registry.write(onnx, as("1.1.0"))).created, false);
    const other = Uint8Array.from(onnx);
    other[other.length - 1] ^= 1;
    await assert.rejects(
      registry.write(other, { ...as("1.1.0"), onnx_sha256: "0".repeat(64) }),
      (e: RegistryError) => e.code === "version_exists",
    );
    const up = await registry.activate("boiler", "1.1.0", { by: "ops@plant", reason: "retrained" });
    assert.deepEqual([up.from, up.version, up.by], ["1.0.0", "1.1.0", "ops@plant"]);
    const back = await registry.activate("boiler", "1.0.0", {
      by: "ops@plant",
      reason: "rollback",
    });
    assert.equal(back.from, "1.1.0");
    const model = await registry.model("boiler");
    assert.deepEqual(model.versions, ["1.0.0", "1.1.0"]);
    assert.equal(model.active, "1.0.0");
    const history = await registry.activations("boiler");
    assert.deepEqual(
      history.map((a) => [a.from, a.version, a.reason]),
      [
        [null, "1.0.0", "first version"],
        ["1.0.0", "1.1.0", "retrained"],
        ["1.1.0", "1.0.0", "rollback"],
      ],
    );
    assert.ok(history.every((a) => !Number.isNaN(Date.parse(a.at))));
  });

  test("never lists, loads or activates a half-written or corrupt version", async () => {
    const registry = await fresh();
    await registry.write(onnx, as("1.0.0"));
    const folder = join(registry.dir, "boiler");
    // A crash while writing leaves a dot-folder; a copy cut short leaves a folder without metadata.
    await mkdir(join(folder, ".incoming-2.0.0-dead"), { recursive: true });
    await writeFile(join(folder, ".incoming-2.0.0-dead", "boiler.onnx"), onnx.subarray(0, 10));
    await mkdir(join(folder, "2.0.0"));
    await writeFile(join(folder, "2.0.0", "boiler.onnx"), onnx);
    assert.deepEqual((await registry.model("boiler")).versions, ["1.0.0"]);
    await assert.rejects(
      registry.activate("boiler", "2.0.0", { by: "x" }),
      (e: RegistryError) => e.code === "version_not_found",
    );
    // A graph that does not match its metadata (a bit flipped on disk).
    await writeFile(join(folder, "2.0.0", "boiler.json"), JSON.stringify(as("2.0.0")));
    const bad = Uint8Array.from(onnx);
    bad[bad.length - 1] ^= 1;
    await writeFile(join(folder, "2.0.0", "boiler.onnx"), bad);
    await assert.rejects(
      registry.activate("boiler", "2.0.0", { by: "x" }),
      (e: RegistryError) => e.code === "registry_entry_invalid" && /sha256/.test(e.message),
    );
    assert.equal((await registry.model("boiler")).active, "1.0.0", "the pointer did not move");
    await rm(join(folder, "2.0.0"), { recursive: true });
  });

  test("repairs a corrupt version written again as itself, and refuses to replace it with another", async () => {
    const registry = await fresh();
    await registry.write(onnx, as("1.0.0"));
    await registry.write(onnx, as("2.0.0"));
    const folder = join(registry.dir, "boiler");
    const graph = join(folder, "2.0.0", "boiler.onnx");
    const metadata = join(folder, "2.0.0", "boiler.json");
    const ref = {
      name: "boiler",
      version: "2.0.0",
      dir: join(folder, "2.0.0"),
      layout: "registry" as const,
    };
    const corrupt = (e: RegistryError, why: RegExp) =>
      e.code === "version_exists" &&
      /^boiler@2\.0\.0 exists but is corrupt/.test(e.message) &&
      why.test(e.message);

    // A disk fault truncates the graph: the same version written again puts it right.
    await truncate(graph, 1000);
    const again = await registry.write(onnx, as("2.0.0"), { activate: true, by: "ops" });
    assert.deepEqual([again.created, again.repaired], [true, true]);
    assert.deepEqual(await readFile(graph), Buffer.from(onnx));
    assert.equal((await verifyVersion(ref)).version, "2.0.0");
    assert.equal(again.activated?.version, "2.0.0");
    // It keeps its place: written before 2.0.0, listed before it.
    await truncate(join(folder, "1.0.0", "boiler.onnx"), 1000);
    assert.equal((await registry.write(onnx, as("1.0.0"))).repaired, true);
    assert.deepEqual((await registry.model("boiler")).versions, ["1.0.0", "2.0.0"]);
    // Intact now: the same write again is the usual no-op.
    const noop = await registry.write(onnx, as("2.0.0"));
    assert.deepEqual([noop.created, noop.repaired], [false, false]);

    // Metadata that no longer parses, the graph intact: the metadata is written again.
    await writeFile(metadata, "{trunc");
    assert.equal((await registry.write(onnx, as("2.0.0"))).repaired, true);
    assert.deepEqual(parseModelMetadata(JSON.parse(await readFile(metadata, "utf8"))), as("2.0.0"));

    // Corrupt, and what is written is another graph, or a graph that is not its metadata's.
    await truncate(graph, 1000);
    const other = Uint8Array.from(onnx);
    other[other.length - 1] ^= 1;
    const otherSha = createHash("sha256").update(other).digest("hex");
    await assert.rejects(
      registry.write(other, { ...as("2.0.0"), onnx_sha256: otherSha }),
      (e: RegistryError) => corrupt(e, /is not replaced: its metadata names another graph/),
    );
    await assert.rejects(registry.write(onnx.subarray(0, 1000), as("2.0.0")), (e: RegistryError) =>
      corrupt(e, /not replaced: the graph written hashes to \w+, not its metadata's/),
    );
    // Both files broken: what the version was cannot be told.
    await writeFile(metadata, "{trunc");
    await assert.rejects(registry.write(onnx, as("2.0.0")), (e: RegistryError) =>
      corrupt(e, /its metadata cannot be read and its graph is not this write's/),
    );
    assert.equal((await stat(graph)).size, 1000, "a refused write leaves the folder as it was");
    assert.equal(await readFile(metadata, "utf8"), "{trunc");
    assert.deepEqual(
      (await readdir(folder)).filter((f) => f.startsWith(".incoming-")),
      [],
      "no temporary folder left",
    );

    // Intact with another graph: immutable, as ever.
    await assert.rejects(
      registry.write(other, { ...as("1.0.0"), onnx_sha256: otherSha }),
      (e: RegistryError) =>
        e.code === "version_exists" && /^boiler@1\.0\.0 exists with another graph/.test(e.message),
    );
  });

  test("refuses versions and names that are not safe path segments", async () => {
    const registry = await fresh();
    for (const version of ["../x", "a/b", "", ".hidden", "a..b"]) {
      await assert.rejects(
        registry.write(onnx, as(version)),
        (e: RegistryError) => e.code === "invalid_version",
        version,
      );
    }
    await assert.rejects(
      registry.model("../etc"),
      (e: RegistryError) => e.code === "invalid_model_name",
    );
    await registry.write(onnx, as("1.0.0"));
    await assert.rejects(
      registry.resolve("boiler", "../../x"),
      (e: RegistryError) => e.code === "invalid_version",
    );
  });

  test("skips a torn last line of the activation history", async () => {
    const registry = await fresh();
    await registry.write(onnx, as("1.0.0"));
    await writeFile(
      join(registry.dir, "boiler", "activations.jsonl"),
      `${await readFile(join(registry.dir, "boiler", "activations.jsonl"), "utf8")}{"name":"boi`,
    );
    assert.equal((await registry.activations("boiler")).length, 1);
    // The next activation starts a line of its own: the torn one never swallows it.
    await registry.write(onnx, as("2.0.0"));
    await registry.activate("boiler", "2.0.0", { by: "bob", reason: "after the crash" });
    assert.deepEqual(
      (await registry.activations("boiler")).map((a) => `${a.by}:${a.version}`),
      ["train:1.0.0", "bob:2.0.0"],
    );
  });

  test("a writer killed with SIGKILL mid-write leaves a folder the next write removes once stale", async () => {
    const registry = await fresh();
    await registry.write(onnx, as("1.0.0"));
    const folder = join(registry.dir, "boiler");
    const child = writeInChild(registry.dir, as("2.0.0"));
    const exited = once(child, "exit");
    // Killed once its graph is being written (128 MiB take far longer than one poll).
    let incoming: string | undefined;
    const deadline = Date.now() + 30_000;
    while (!incoming && Date.now() < deadline && child.exitCode === null) {
      for (const entry of await readdir(folder)) {
        if (!entry.startsWith(".incoming-")) continue;
        const inside = await readdir(join(folder, entry)).catch(() => []);
        if (inside.some((f) => f.endsWith(".tmp"))) incoming = entry;
      }
      if (!incoming) await delay(2);
    }
    child.kill("SIGKILL");
    const [, signal] = (await exited) as [number | null, string | null];
    assert.equal(signal, "SIGKILL", "killed mid-write");
    assert.ok(incoming, "its temporary folder was seen");
    assert.deepEqual((await registry.model("boiler")).versions, ["1.0.0"]);

    // Young: it may be another process's write in progress, so the next write keeps it.
    await registry.write(onnx, as("1.1.0"));
    assert.ok(await stat(join(folder, incoming)));
    // An hour later it is taken for what it is, with the temporary files of other writes.
    await age(join(folder, incoming), STALE_WRITE_MS + 1000);
    const tmp = join(folder, ".ACTIVE.json.dead.tmp");
    await writeFile(tmp, "{");
    await age(tmp, STALE_WRITE_MS + 1000);
    const young = join(folder, ".incoming-3.0.0-alive");
    await mkdir(young);
    await registry.write(onnx, as("1.2.0"));
    const left = (await readdir(folder)).filter((f) => f.startsWith("."));
    assert.deepEqual(left, [".incoming-3.0.0-alive"], "only the young one stays");
    assert.deepEqual((await registry.model("boiler")).versions, ["1.0.0", "1.1.0", "1.2.0"]);
  });

  test("prunes old inactive versions beyond the newest N, never the active one, its rollback target or a recent one", async () => {
    const dir = (await fresh()).dir;
    const registry = new ModelRegistry(dir, { keepVersions: 2 });
    const folder = join(dir, "boiler");
    for (const v of ["1", "2", "3", "4", "5", "6"]) await registry.write(onnx, as(v));
    await registry.putReport("boiler", "1", { decision: "held" });
    // Written in this order (v4 and v6 within the last day); then v3 active, rolled back to v2.
    const ages: Record<string, number> = { 1: 10, 2: 9, 3: 8, 5: 7, 6: 3 / 24, 4: 2 / 24 };
    for (const [v, days] of Object.entries(ages)) await age(join(folder, v), days * DAY);
    await registry.activate("boiler", "3", { by: "ops", reason: "retrained" });
    await registry.activate("boiler", "2", { by: "ops", reason: "rollback" });
    assert.deepEqual((await registry.model("boiler")).versions, ["1", "2", "3", "5", "6", "4"]);

    const written = await registry.write(onnx, as("7"));
    // Newest two: 4 and 7. Kept besides: 2 (active), 3 (the rollback target), 6 (recent).
    assert.deepEqual(written.pruned, ["1", "5"]);
    const model = await registry.model("boiler");
    assert.deepEqual(model.versions, ["2", "3", "6", "4", "7"]);
    assert.equal(model.active, "2");
    const lines = (await readFile(join(folder, "pruned.jsonl"), "utf8")).trim().split("\n");
    const records = lines.map((l) => JSON.parse(l) as Pruning);
    assert.deepEqual(
      records.map((r) => r.version),
      ["1", "5"],
    );
    assert.ok(
      records.every((r) => r.name === "boiler" && Date.parse(r.written_at) < Date.parse(r.at)),
    );
    // The history and a pruned version's report stay; the version is gone for good.
    assert.equal((await registry.activations("boiler")).length, 3);
    assert.ok(await stat(join(folder, "1.retrain.json")));
    await assert.rejects(
      registry.activate("boiler", "1", { by: "ops" }),
      (e: RegistryError) => e.code === "version_not_found",
    );
    assert.deepEqual(
      (await readdir(folder)).filter((f) => f.startsWith(".")),
      [],
      "nothing half-removed",
    );
    // Nothing more to prune: the next write removes nothing.
    assert.deepEqual((await registry.write(onnx, as("7"))).pruned, []);
    assert.throws(() => new ModelRegistry(dir, { keepVersions: 0 }), RangeError);
  });

  describe("pruning racing a rollback in another writer", () => {
    /**
     * A registry keeping 1 version, holding 1, 2, 3 (all over a day old), 3 active from 2: the
     * next write prunes 1 unless something activates it. `hooks` are filled in by each test.
     */
    async function racing(hooks: RegistryHooks) {
      const dir = (await fresh()).dir;
      const registry = new ModelRegistry(dir, { keepVersions: 1, hooks });
      const folder = join(dir, "boiler");
      for (const v of ["1", "2", "3"]) await registry.write(onnx, as(v));
      for (const [v, days] of [
        ["1", 10],
        ["2", 9],
        ["3", 8],
      ] as const) {
        await age(join(folder, v), days * DAY);
      }
      await registry.activate("boiler", "2", { by: "ops" });
      await registry.activate("boiler", "3", { by: "ops" });
      const pointer = async () =>
        JSON.parse(await readFile(join(folder, "ACTIVE.json"), "utf8")) as Activation;
      const prunedLines = async () =>
        (await readFile(join(folder, "pruned.jsonl"), "utf8").catch(() => ""))
          .split("\n")
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as Pruning).version);
      return { registry, folder, pointer, prunedLines, before: await pointer() };
    }

    test("pruning puts back a version it moved aside once the pointer names it", async () => {
      // The rollback to 1 verified before the prune; it writes its pointer while 1 is aside.
      const verified = gate();
      const release = gate();
      const steps: string[] = [];
      const hooks: RegistryHooks = {};
      const { registry, folder, pointer, prunedLines } = await racing(hooks);
      hooks.activateVerified = async (_, version) => {
        if (version !== "1") return;
        steps.push("activate verified");
        verified.open();
        await release.opened;
      };
      hooks.pruneMovedAside = async (_, version) => {
        if (version !== "1") return;
        steps.push("prune moved aside");
        release.open();
        await until(async () => (await pointer()).version === "1", "the pointer names 1");
        steps.push("pointer written");
      };
      const rollback = registry.activate("boiler", "1", { by: "ops", reason: "rollback" });
      await verified.opened;
      const written = await registry.write(onnx, as("4"));
      const activation = await rollback;

      assert.deepEqual(steps, ["activate verified", "prune moved aside", "pointer written"]);
      assert.deepEqual([activation.version, activation.from], ["1", "3"]);
      // 1 put back, 3 the rollback target now, 4 the newest: 2 goes.
      assert.deepEqual(written.pruned, ["2"]);
      assert.equal((await registry.model("boiler")).active, "1");
      assert.deepEqual((await registry.model("boiler")).versions, ["1", "3", "4"]);
      assert.equal((await registry.resolve("boiler")).version, "1", "the active one loads");
      assert.deepEqual(await prunedLines(), ["2"], "no record of a pruning that did not happen");
      assert.deepEqual(
        (await readdir(folder)).filter((f) => f.startsWith(".")),
        [],
        "nothing left aside",
      );
    });

    test("an activation that writes its pointer after the prune looked fails with version_not_found and puts the previous pointer back", async () => {
      // The rollback to 1 verified, then a whole write pruned 1, then the rollback goes on.
      const verified = gate();
      const release = gate();
      const hooks: RegistryHooks = {};
      const { registry, pointer, prunedLines, before } = await racing(hooks);
      hooks.activateVerified = async (_, version) => {
        if (version !== "1") return;
        verified.open();
        await release.opened;
      };
      const rollback = registry.activate("boiler", "1", { by: "ops", reason: "rollback" });
      await verified.opened;
      const written = await registry.write(onnx, as("4"));
      assert.deepEqual(written.pruned, ["1"]);
      release.open();

      await assert.rejects(rollback, (e: RegistryError) => e.code === "version_not_found");
      assert.deepEqual(await pointer(), before, "ACTIVE.json names the previous version again");
      assert.equal((await registry.resolve("boiler")).version, "3", "the active one loads");
      assert.deepEqual(await prunedLines(), ["1"]);
      const history = await registry.activations("boiler");
      assert.equal(history.at(-1)?.version, "1", "the attempt stays in the history");
    });

    test("pruning keeps a version the last activation record named within the last minute", async () => {
      // An activation that appended its record and has yet to write its pointer.
      const { registry, folder, prunedLines, before } = await racing({});
      const record: Activation = {
        ...before,
        version: "1",
        from: "3",
        at: new Date().toISOString(),
      };
      await writeFile(join(folder, "activations.jsonl"), `${JSON.stringify(record)}\n`, {
        flag: "a",
      });
      assert.deepEqual((await registry.write(onnx, as("4"))).pruned, []);
      assert.deepEqual((await registry.model("boiler")).versions, ["1", "2", "3", "4"]);
      assert.deepEqual(await prunedLines(), []);
      // The same record two minutes old is an attempt that never finished: 1 goes.
      const old: Activation = { ...record, at: new Date(Date.now() - 2 * 60_000).toISOString() };
      await writeFile(join(folder, "activations.jsonl"), `${JSON.stringify(old)}\n`);
      assert.deepEqual((await registry.write(onnx, as("4"))).pruned, ["1"]);
      assert.deepEqual(await prunedLines(), ["1"]);
    });

    test("a write leaves a young .pruning folder alone: another process's prune may put it back", async () => {
      const registry = await fresh();
      await registry.write(onnx, as("1.0.0"));
      const aside = join(registry.dir, "boiler", ".pruning-0.9.0-abcd");
      await mkdir(aside);
      await registry.write(onnx, as("1.1.0"));
      assert.ok(await stat(aside), "renamed a moment ago: kept");
    });
  });
});
