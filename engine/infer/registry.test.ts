import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { ModelRegistry, type RegistryError } from "./registry.ts";

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
});
