import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ModelRegistry } from "./registry.ts";
import { SEED_BY, seedRegistry } from "./seed_registry.ts";

const MODELS = fileURLToPath(new URL("../../models", import.meta.url));
const NAME = "featurewise_ocsvm_linear";

/** A folder holding the committed linear model flat, its version set to `version`. */
async function flat(dir: string, version?: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(join(MODELS, `${NAME}.onnx`), join(dir, `${NAME}.onnx`));
  const meta = JSON.parse(await readFile(join(MODELS, `${NAME}.json`), "utf8"));
  if (version) meta.version = version;
  await writeFile(join(dir, `${NAME}.json`), JSON.stringify(meta));
  return meta.version;
}

test("seedRegistry copies flat models in as active versions, once, and a newer committed one replaces a seeded one", async () => {
  const root = await mkdtemp(join(tmpdir(), "seed-registry-"));
  try {
    const to = join(root, "registry");
    const v1 = await flat(join(root, "a"));
    const first = await seedRegistry(join(root, "a"), to);
    assert.deepEqual(first, [{ name: NAME, version: v1, written: true, active: true }]);
    const registry = new ModelRegistry(to);
    assert.equal(await registry.activeVersion(NAME), v1);
    // Again: nothing written, no new activation.
    const again = await seedRegistry(join(root, "a"), to);
    assert.deepEqual(again, [{ name: NAME, version: v1, written: false, active: true }]);
    assert.equal((await registry.activations(NAME)).length, 1);
    // A newer committed model: written and, the active one being seeded, activated.
    await flat(join(root, "b"), "9.9.9");
    await seedRegistry(join(root, "b"), to);
    assert.equal(await registry.activeVersion(NAME), "9.9.9");
    const last = (await registry.activations(NAME)).at(-1);
    assert.deepEqual([last?.by, last?.from], [SEED_BY, v1]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("seedRegistry leaves a version someone else activated active", async () => {
  const root = await mkdtemp(join(tmpdir(), "seed-registry-"));
  try {
    const to = join(root, "registry");
    const v1 = await flat(join(root, "a"));
    await flat(join(root, "b"), "9.9.9");
    await seedRegistry(join(root, "b"), to);
    const registry = new ModelRegistry(to);
    // Say a retraining was promoted: not the seed's doing.
    await seedRegistry(join(root, "a"), join(root, "other"));
    const ref = await new ModelRegistry(join(root, "other")).resolve(NAME);
    const meta = JSON.parse(await readFile(join(ref.dir, `${NAME}.json`), "utf8"));
    await registry.write(new Uint8Array(await readFile(join(ref.dir, `${NAME}.onnx`))), meta, {
      activate: true,
      by: "retrain",
    });
    assert.equal(await registry.activeVersion(NAME), v1);
    const seeded = await seedRegistry(join(root, "b"), to);
    assert.deepEqual(seeded, [{ name: NAME, version: "9.9.9", written: false, active: false }]);
    assert.equal(await registry.activeVersion(NAME), v1, "the promoted version stays active");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
