// The Health page against a real engine serving two models: each model's own frames, queue and latency.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { jsonFrame } from "../../engine/_test/engine_harness.ts";
import { trainedRegistry } from "../../engine/_test/registry_engine.ts";
import { waitFor } from "../../engine/_test/wait_for.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const BASE_TS = Date.UTC(2026, 11, 7);
const text = (html: string) => html.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");

describe("the Health page with an engine serving two models", () => {
  const reg = trainedRegistry([
    { features: 12, name: "boiler", frames: 300 },
    { features: 9, name: "packaging", frames: 300 },
  ]);
  let db: TestDatabase;
  let app: ReturnType<typeof createBackendApp>;
  let url: (path: string) => string;

  before(async () => {
    ({ url } = await reg.start({ MODEL_ROUTES: "line-b-*=packaging" }));
    db = await testTargets()[0].open();
    app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: url(""), timeoutMs: 5000 }),
    });
  });
  after(() => db?.dispose());

  test("lists each model's frames accepted and scored, its queue and its latency", async () => {
    const [boiler, packaging] = reg.models;
    const W = reg.metas[0].window_size;
    const frames = { boiler: W + 4, packaging: W + 1 };
    for (const [f, stream, n] of [
      [boiler, "boiler-1", frames.boiler],
      [packaging, "line-b-1", frames.packaging],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const res = await fetch(url("/data-enqueue"), {
          method: "POST",
          body: jsonFrame(f.featureNames, f.normalFrame(i), {
            stream_id: stream,
            timestamp: BASE_TS + i * 1000,
          }),
        });
        assert.equal(res.status, 202);
      }
    }
    assert.equal(reg.metas[1].window_size, W);
    /** The per-model table's rows, as text, once it shows every window scored. */
    const rows = await waitFor(async () => {
      const page = await (await app.request("/status")).text();
      const table = /<table id="engine-per-model">([\s\S]*?)<\/table>/.exec(page);
      const found = [...(table?.[1] ?? "").matchAll(/<tr data-model="([^"]+)">([\s\S]*?)<\/tr>/g)];
      const listed = found.map(([, name, row]) => [name, text(row).trim()]);
      const done = listed.every(([name, row]) =>
        row.includes(`/ ${frames[name as keyof typeof frames] - W + 1} `),
      );
      return listed.length === 2 && done ? listed : undefined;
    }, "every window scored, as Health reads it");
    assert.deepEqual(
      rows.map(([name]) => name),
      ["boiler", "packaging"],
    );
    assert.match(
      rows[0][1],
      new RegExp(`^boiler ${frames.boiler} / 5 0 of \\d+ [\\d.]+ ms / [\\d.]+ ms$`),
    );
    assert.match(
      rows[1][1],
      new RegExp(`^packaging ${frames.packaging} / 2 0 of \\d+ [\\d.]+ ms / [\\d.]+ ms$`),
    );
  });
});
