import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { modelFor } from "./from_config.ts";
import { ModelRegistry } from "./registry.ts";

describe("modelFor", () => {
  let fixture: ModelFixture;
  let onnx: Uint8Array;
  let meta: ModelMetadata;
  let n = 0;
  const as = (version: string): ModelMetadata => ({ ...meta, version });

  /** A registry with 1.0.0 then 2.0.0 written, 2.0.0 activated: its pointer's `from` is 1.0.0. */
  async function rolledForward(): Promise<ModelRegistry> {
    const dir = join(fixture.dir, `registry-${n++}`);
    await mkdir(dir);
    const registry = new ModelRegistry(dir);
    await registry.write(onnx, as("1.0.0"));
    await registry.write(onnx, as("2.0.0"), { activate: true, by: "ops", reason: "roll forward" });
    return registry;
  }

  /** Loads the registry's model as the engine's start does, its error-level log lines kept. */
  async function start(registry: ModelRegistry) {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({
      service: "engine",
      level: "error",
      write: (line) => void lines.push(JSON.parse(line)),
    });
    const config = {
      MODEL_DIR: registry.dir,
      DEFAULT_MODEL_NAME: "boiler",
      DEFAULT_DEVICE: "cpu" as const,
      INFERENCE_BATCH_SIZE: 8,
      INFERENCE_SESSIONS: 1,
    };
    return { lines, loading: modelFor(config, log) };
  }

  before(async () => {
    fixture = await trainFixtureModel({ features: 6, name: "boiler" });
    onnx = await readFile(join(fixture.dir, "boiler.onnx"));
    meta = parseModelMetadata(JSON.parse(await readFile(join(fixture.dir, "boiler.json"), "utf8")));
  });
  after(() => fixture.remove());

  test("serves the pointer's rollback target when the active graph is truncated, the pointer left", async () => {
    const registry = await rolledForward();
    const pointer = await readFile(join(registry.dir, "boiler", "ACTIVE.json"), "utf8");
    await truncate(join(registry.dir, "boiler", "2.0.0", "boiler.onnx"), 1000);
    const { lines, loading } = await start(registry);
    const { model, ref } = await loading;
    try {
      assert.equal(model.metadata.version, "1.0.0");
      assert.equal(ref.version, "1.0.0");
      assert.equal(
        await readFile(join(registry.dir, "boiler", "ACTIVE.json"), "utf8"),
        pointer,
        "an operator decides: the pointer still names 2.0.0",
      );
      assert.equal(lines.length, 1, JSON.stringify(lines));
      const [said] = lines as { level: string; msg: string; version: string; serving: string }[];
      assert.equal(said.level, "error");
      assert.match(said.msg, /active version cannot be loaded; serving the pointer's rollback/);
      assert.deepEqual([said.version, said.serving], ["2.0.0", "1.0.0"]);
      assert.match(JSON.stringify(said), /sha256 .* is not the metadata's/);
    } finally {
      await model.close();
    }
  });

  test("serves the rollback target when the active version verifies but its graph does not load", async () => {
    const registry = await rolledForward();
    // Graph and metadata agree, yet it is no ONNX model: verification passes, the load fails.
    const junk = new Uint8Array(4096).fill(42);
    const sha = createHash("sha256").update(junk).digest("hex");
    await registry.write(junk, { ...as("3.0.0"), onnx_sha256: sha }, { activate: true, by: "ops" });
    const { lines, loading } = await start(registry);
    const { model } = await loading;
    try {
      assert.equal(model.metadata.version, "2.0.0");
      assert.equal(await registry.activeVersion("boiler"), "3.0.0");
      assert.deepEqual(
        lines.map((l) => [l.version, l.serving]),
        [["3.0.0", "2.0.0"]],
      );
    } finally {
      await model.close();
    }
  });

  test("fails as before when the pointer names no rollback target", async () => {
    // One version, activated when written: its record has no `from`.
    const fresh = new ModelRegistry(join(fixture.dir, `registry-${n++}`));
    await mkdir(fresh.dir);
    await fresh.write(onnx, as("1.0.0"));
    await truncate(join(fresh.dir, "boiler", "1.0.0", "boiler.onnx"), 1000);
    const { lines, loading } = await start(fresh);
    await assert.rejects(loading, (e: Error) => {
      assert.equal(e.name, "ModelLoadError");
      assert.match(e.message, /^cannot load model boiler: boiler@1\.0\.0 .*sha256/);
      assert.doesNotMatch(e.message, /rollback target/);
      return true;
    });
    assert.deepEqual(lines, []);
  });

  test("fails naming both when the rollback target cannot be loaded either", async () => {
    const registry = await rolledForward();
    await truncate(join(registry.dir, "boiler", "2.0.0", "boiler.onnx"), 1000);
    await truncate(join(registry.dir, "boiler", "1.0.0", "boiler.onnx"), 500);
    const { lines, loading } = await start(registry);
    await assert.rejects(loading, (e: Error) => {
      assert.equal(e.name, "ModelLoadError");
      assert.match(
        e.message,
        /^cannot load model boiler: boiler@2\.0\.0 .*sha256.*; its rollback target 1\.0\.0 \(the pointer's from\) cannot be loaded either: cannot load model boiler: boiler@1\.0\.0 .*sha256/,
      );
      return true;
    });
    assert.deepEqual(lines, []);
  });
});
