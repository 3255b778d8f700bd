// The Health page against a real ingest replica on a real nats-server with no live worker: it warns that frames wait unscored, until a worker takes the partitions.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jsonFrame } from "../../engine/_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../../engine/_test/model_fixture.ts";
import { roleConfig } from "../../engine/_test/role_config.ts";
import { waitFor } from "../../engine/_test/wait_for.ts";
import { type NatsServer, startNatsServer } from "../../engine/bus/_test/nats_server.ts";
import { createIngestRole } from "../../engine/roles/ingest_role.ts";
import { createWorkerRole } from "../../engine/roles/worker_role.ts";
import { type RunningServer, serve } from "../../engine/serve.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { createBackendApp } from "../app.ts";
import { type TestDatabase, testTargets } from "../db/_test_databases.ts";
import { createEngineMonitor } from "./engine_monitor.ts";

const T0 = Date.UTC(2026, 11, 7);
const text = (html: string) => html.replace(/<[^>]+>/g, "").replace(/\s+/g, " ");

describe("the Health page with no live worker under scale-out", () => {
  let server: NatsServer;
  let model: ModelFixture;
  let dataDir: string;
  let ingest: ReturnType<typeof createIngestRole>;
  let worker: ReturnType<typeof createWorkerRole> | undefined;
  let http: RunningServer;
  let db: TestDatabase;
  let app: ReturnType<typeof createBackendApp>;
  const env = (role: "ingest" | "worker") =>
    roleConfig(role, server.url, model, {
      NATS_STREAM: "HEALTHUNOWNED",
      NATS_PARTITIONS: "2",
      DATA_DIR: dataDir,
      // Alerts are not this test's: the worker keeps them in its outbox.
      NESTJS_URL: "http://127.0.0.1:9",
      INGEST_WORKERS: "0",
    });
  const log = createLogger({ service: "engine", level: "silent" });

  before(async () => {
    [server, model, db] = await Promise.all([
      startNatsServer(),
      trainFixtureModel({ features: 12, name: "health_unowned" }),
      testTargets()[0].open(),
    ]);
    dataDir = await mkdtemp(join(tmpdir(), "health-unowned-"));
    ingest = createIngestRole({ config: env("ingest"), log });
    await ingest.start();
    http = await serve(ingest.app.fetch, { hostname: "127.0.0.1", port: 0 });
    app = createBackendApp({
      database: db,
      engine: createEngineMonitor({ engineUrl: `http://127.0.0.1:${http.port}`, timeoutMs: 5000 }),
    });
  });
  after(async () => {
    await http?.close();
    await Promise.allSettled([ingest?.shutdown(2000), worker?.shutdown(2000)]);
    await db?.dispose();
    await server?.remove();
    await model?.remove();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** The Health page's warning of partitions nobody scores, as text; undefined when absent. */
  async function warning(): Promise<string | undefined> {
    const page = await (await app.request("/status")).text();
    const found = /<p id="engine-unowned"[^>]*>([\s\S]*?)<\/p>/.exec(page);
    return found ? text(found[1]) : undefined;
  }

  test("warns that no live worker scores the partitions and how many frames wait, until a worker took them", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`http://127.0.0.1:${http.port}/data-enqueue`, {
        method: "POST",
        body: jsonFrame(model.featureNames, model.normalFrame(i), {
          stream_id: "line-1",
          timestamp: T0 + i * 1000,
        }),
      });
      assert.equal(res.status, 202, await res.text());
    }
    const said = await waitFor(
      async () => {
        const w = await warning();
        return w?.includes("3 frames") ? w : undefined;
      },
      "the page to warn of 3 frames unscored",
      30_000,
      100,
    );
    assert.match(
      said,
      /^No live worker scores 2 partitions: 3 frames wait unscored \(partitions 0, 1\)\. Start an inference worker/,
    );
    // Readiness stays ready: the page says what is wrong beside it.
    const page = await (await app.request("/status")).text();
    assert.match(page, /data-ready="ready"/);

    worker = createWorkerRole({ config: env("worker"), log });
    await worker.start();
    await waitFor(async () => (await warning()) === undefined, "the warning to go", 30_000, 100);
  });
});
