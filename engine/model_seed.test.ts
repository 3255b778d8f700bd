// MODEL_SEED_DIR: the engine copies flat models into its registry at start (what a container's
// engine needs to retrain and activate versions in its own volume), once.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { startTestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { ModelRegistry } from "./infer/registry.ts";

let model: ModelFixture;
let sink: AlertSink;
before(async () => {
  model = await trainFixtureModel({ features: 12, name: "seeded" });
  sink = await startAlertSink();
});
after(async () => {
  await sink?.close();
  await model?.remove();
});

test("an engine with MODEL_SEED_DIR serves the flat model from its own registry, seeded once", async () => {
  const registryDir = await mkdtemp(join(tmpdir(), "seeded-registry-"));
  try {
    const { version } = JSON.parse(await readFile(join(model.dir, `${model.name}.json`), "utf8"));
    for (let start = 0; start < 2; start++) {
      const engine = await startTestEngine(model, sink, {
        MODEL_DIR: registryDir,
        MODEL_SEED_DIR: model.dir,
      });
      try {
        const served = engine.engine.state.pipeline?.lanes[0].model.metadata;
        assert.equal(served?.version, version);
        const registry = new ModelRegistry(registryDir);
        assert.equal(await registry.activeVersion(model.name), version);
        // Seeded once: the second start finds the version there and records nothing new.
        assert.equal((await registry.activations(model.name)).length, 1, `start ${start + 1}`);
      } finally {
        await engine.stop();
      }
    }
  } finally {
    await rm(registryDir, { recursive: true, force: true });
  }
});
