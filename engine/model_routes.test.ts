import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { ModelMetadata } from "../contracts/model.ts";
import { jsonFrame } from "./_test/engine_harness.ts";
import { type EngineProcess, spawnEngine } from "./_test/engine_process.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { ADMIN_TOKEN, trainedRegistry } from "./_test/registry_engine.ts";
import { waitFor } from "./_test/wait_for.ts";

const BASE_TS = Date.UTC(2026, 11, 2);

// Two assets with different sensor lists in one engine: a boiler (12 sensors, the default model)
// and a packaging line (9 sensors) that `line-b-*` streams are routed to.
describe("an engine serving two models by MODEL_ROUTES", () => {
  const reg = trainedRegistry([
    { features: 12, name: "boiler", frames: 300 },
    { features: 9, name: "packaging", frames: 300 },
    { features: 9, name: "packaging", frames: 360 },
  ]);
  let boiler: ModelFixture;
  let packaging: ModelFixture;
  const metas: Record<string, ModelMetadata> = {};
  let engine: EngineProcess;
  let url: (path: string) => string;

  before(async () => {
    [boiler, packaging] = reg.models;
    [metas.boiler, metas.packaging, metas.packaging2] = reg.metas;
    await reg.registry.activate("packaging", metas.packaging.version, { by: "test", reason: "" });
    ({ engine, url } = await reg.start({ MODEL_ROUTES: "line-b-*=packaging" }));
  });

  const send = (stream: string, i: number, f: ModelFixture, values = f.normalFrame(i)) =>
    fetch(url("/data-enqueue"), {
      method: "POST",
      body: jsonFrame(f.featureNames, values, { stream_id: stream, timestamp: BASE_TS + i * 1000 }),
    });
  /** Windows scored per model, stream and window end, from the engine's per-batch lines. */
  const scored = () => {
    const seen = new Map<string, number>();
    for (const line of engine.logs().filter((l) => l.msg === "batch scored")) {
      for (const f of line.frames as { stream_id: string; timestamp: string }[]) {
        const key = `${line.model}:${f.stream_id}@${f.timestamp}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }
    return seen;
  };

  test("lists both models with their routes, features and live streams", async () => {
    const res = await fetch(url("/models"), {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(res.status, 200);
    const { models } = (await res.json()) as { models: Record<string, unknown>[] };
    assert.deepEqual(
      models.map((m) => [m.name, m.active_version, m.n_features, m.routes]),
      [
        ["boiler", metas.boiler.version, 12, ["*"]],
        ["packaging", metas.packaging.version, 9, ["line-b-*"]],
      ],
    );
  });

  test("scores each stream with its model, refuses a frame of the other asset with 422 naming the model, and switches one model's version alone", async () => {
    const W = metas.boiler.window_size;
    const FRAMES = 40;
    const statuses: number[] = [];
    let activation: Promise<Response> | undefined;
    let answer: Response | undefined;
    for (let i = 0; i < FRAMES; i++) {
      // The spike comes once the new version is scoring (frames kept flowing while it loaded).
      if (i === 30) answer = await activation;
      const sent = await Promise.all([
        send("boiler-1", i, boiler),
        send("line-b-1", i, packaging, i === 30 ? packaging.spikedFrame(i, 3) : undefined),
      ]);
      statuses.push(...sent.map((r) => r.status));
      if (i === 15) {
        // The packaging model moves to its other version while both streams flow.
        activation = fetch(url("/models/packaging/activate"), {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ version: metas.packaging2.version, by: "test" }),
        });
      }
    }
    assert.deepEqual([...new Set(statuses)], [202], "every frame accepted");
    assert.equal(answer?.status, 200);

    // The boiler's sensors on a packaging stream: refused, naming the model; nothing kept.
    const wrong = await send("line-b-2", 0, boiler);
    assert.equal(wrong.status, 422);
    const body = (await wrong.json()) as { error: string; message: string };
    assert.equal(body.error, "frame_unknown_features");
    assert.match(body.message, /stream "line-b-2" is scored by model "packaging" \(9 features\)/);

    const expected = 2 * (FRAMES - W + 1);
    const seen = await waitFor(() => {
      const s = scored();
      return s.size === expected ? s : undefined;
    }, "every window of both streams scored");
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      "no window scored twice",
    );
    const keys = [...seen.keys()];
    assert.equal(keys.filter((k) => k.startsWith("boiler:boiler-1@")).length, FRAMES - W + 1);
    assert.equal(keys.filter((k) => k.startsWith("packaging:line-b-1@")).length, FRAMES - W + 1);
    assert.ok(!keys.some((k) => k.includes("line-b-2")), "the refused frame left nothing");

    // GET /stats gives each model's own counters beside the sums.
    const stats = (await (await fetch(url("/stats"))).json()) as {
      frames: { accepted: number; scored: number };
      models: {
        name: string;
        frames: { accepted: number; scored: number };
        queue: { depth: number; capacity: number };
        latency_ms: { count: number; p99: number };
        inference_ms: { count: number };
      }[];
    };
    assert.deepEqual(
      stats.models.map((m) => [m.name, m.frames.accepted, m.frames.scored, m.latency_ms.count]),
      [
        ["boiler", FRAMES, FRAMES - W + 1, FRAMES - W + 1],
        ["packaging", FRAMES, FRAMES - W + 1, FRAMES - W + 1],
      ],
    );
    assert.equal(stats.frames.accepted, 2 * FRAMES);
    assert.equal(stats.frames.scored, expected);
    for (const m of stats.models) {
      assert.ok(m.inference_ms.count > 0 && m.latency_ms.p99 > 0, m.name);
      assert.equal(m.queue.depth, 0, m.name);
      assert.ok(m.queue.capacity > 0, m.name);
    }

    // The spike on the packaging line is alerted under the packaging model's new version.
    const alerts = await waitFor(() => {
      const a = reg.sink.requests
        .map((r) => JSON.parse(r.body))
        .filter((x) => x.stream_id === "line-b-1");
      return a.some((x) => x.model_version === metas.packaging2.version) ? a : undefined;
    }, "the packaging line's alert under the new version");
    assert.ok(alerts.every((a) => a.model_name === "packaging"));
    const models = (await (
      await fetch(url("/models"), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json()) as {
      models: { name: string; active_version: string; live_streams: number; streams: number }[];
    };
    // `streams` is SPEC §9's name for the same count.
    assert.deepEqual(
      models.models.map((m) => [m.name, m.active_version, m.live_streams, m.streams]),
      [
        ["boiler", metas.boiler.version, 1, 1],
        ["packaging", metas.packaging2.version, 1, 1],
      ],
    );
  });
});

describe("engine start-up with bad routes", () => {
  test("refuses routes naming a model the registry does not hold, naming it", async () => {
    const f = await trainFixtureModel({ features: 6, name: "boiler", frames: 200 });
    try {
      const engine = spawnEngine("node", {
        MODEL_DIR: f.dir,
        DEFAULT_MODEL_NAME: "boiler",
        MODEL_ROUTES: "line-*=compressor",
      });
      const code = await engine.exited;
      assert.notEqual(code, 0);
      assert.match(engine.output(), /compressor/);
      assert.doesNotMatch(engine.output(), /engine ready/);
    } finally {
      await f.remove();
    }
  });

  test("refuses a route whose model's graph is corrupt, and a glob never reached", async () => {
    const f = await trainFixtureModel({ features: 6, name: "boiler", frames: 200 });
    try {
      await writeFile(join(f.dir, "packaging.onnx"), "not a graph");
      await writeFile(
        join(f.dir, "packaging.json"),
        await readFile(join(f.dir, "boiler.json"), "utf8").then((t) =>
          t.replace(/"name":\s*"boiler"/, '"name": "packaging"'),
        ),
      );
      const corrupt = spawnEngine("node", {
        MODEL_DIR: f.dir,
        DEFAULT_MODEL_NAME: "boiler",
        MODEL_ROUTES: "line-*=packaging",
      });
      assert.notEqual(await corrupt.exited, 0);
      assert.match(corrupt.output(), /packaging/);
      const shadowed = spawnEngine("node", {
        MODEL_DIR: f.dir,
        DEFAULT_MODEL_NAME: "boiler",
        MODEL_ROUTES: "*=boiler,line-*=packaging",
      });
      assert.notEqual(await shadowed.exited, 0);
      assert.match(shadowed.output(), /never reached/);
    } finally {
      await f.remove();
    }
  });
});
