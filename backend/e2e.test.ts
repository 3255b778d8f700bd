import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type RunningServer, serveApp } from "./_runtime.ts";
import { freePort } from "./_test/free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "./_test/spawn_service.ts";
import { createAlertRepository } from "./alerts/alert_repository.ts";
import { createBackendApp } from "./app.ts";
import { type TestDatabase, testTargets } from "./db/_test_databases.ts";
import { createPlantStreams } from "./simulator/plant_streams.ts";
import { createFrameSender } from "./simulator/send_frame.ts";
import { createSimulator } from "./simulator/simulator.ts";

const FEATURE = 4242;
let db: TestDatabase;
let server: RunningServer;
let engine: ServiceProcess;
let dataDir: string;
let simulator: ReturnType<typeof createSimulator>;

before(async () => {
  db = await testTargets().at(-1)!.open();
  dataDir = await mkdtemp(join(tmpdir(), "engine-e2e-"));
  const enginePort = await freePort();
  const engineUrl = `http://127.0.0.1:${enginePort}`;
  simulator = createSimulator({
    streams: createPlantStreams({ nFeatures: 25_000, seed: 11 }),
    send: createFrameSender({ engineUrl, maxRetries: 5 }),
  });
  server = await serveApp(createBackendApp({ database: db, simulator }), "127.0.0.1", 0);
  engine = spawnService([...NODE_TS, "engine/main.ts"], {
    APP_HOST: "127.0.0.1",
    APP_PORT: String(enginePort),
    NESTJS_URL: `http://127.0.0.1:${server.port}`,
    DEFAULT_DEVICE: "cpu",
    DATA_DIR: dataDir,
  });
  await engine.waitForLog((l) => l.msg === "engine ready", 120_000);
});
after(async () => {
  await simulator?.stop();
  await engine?.stop("SIGTERM");
  await server?.close(AbortSignal.timeout(1000));
  await db?.dispose();
  await rm(dataDir, { recursive: true, force: true });
});

test("an injected anomaly travels simulator → engine → backend and is stored naming the feature", async () => {
  const res = await fetch(`http://127.0.0.1:${server.port}/data/stream`, {
    method: "POST",
    body: JSON.stringify({
      rate_hz: 5,
      duration_s: 12,
      anomaly_every_s: 0,
      anomalies: [
        { at_frame: 10, kind: "level_shift", features: [FEATURE], duration: 20, magnitude: 25 },
      ],
    }),
  });
  assert.equal(res.status, 202);
  const alerts = createAlertRepository(db);
  const page = await waitFor(
    async () => {
      const p = await alerts.list({ featureIdx: FEATURE, limit: 10, featuresPerAlert: 1000 });
      return p.alerts.length > 0 ? p : undefined;
    },
    `an alert naming feature ${FEATURE}`,
    90_000,
  );
  const [alert] = page.alerts;
  const listed = alert.anomalous_features.find((f) => f.feature_idx === FEATURE);
  assert.equal(listed?.feature, `feature_${FEATURE}`);
  assert.ok(listed!.score >= (alert.threshold ?? 0.9));
  const [truth] = simulator.status().injected;
  assert.ok(truth.start_time !== null);
  assert.ok(Date.parse(alert.timestamp) >= Date.parse(truth.start_time!));
  assert.equal(simulator.status().answers["202"] > 10, true);
});
