import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { startBackend } from "./_test/backend_process.ts";
import { freePort } from "./_test/free_port.ts";
import {
  DENO_TS,
  NODE_TS,
  type ServiceProcess,
  spawnService,
  waitFor,
} from "./_test/spawn_service.ts";

const started: ServiceProcess[] = [];
after(() => {
  for (const s of started) s.stop("SIGKILL");
});

/** Runs start.ts with `runtime` until an alert is stored, then Ctrl-C; returns its output. */
async function startUntilAlertThenInterrupt(
  runtime: string[],
  env: Record<string, string> = {},
): Promise<string[]> {
  const [backendPort, enginePort] = [await freePort(), await freePort()];
  const start = spawnService([...runtime, "start.ts"], {
    PORT: String(backendPort),
    APP_PORT: String(enginePort),
    DATABASE_URL: "",
    // Faster than the demo's 1 Hz / 20 s so the test is short; the wiring is the same.
    SIMULATOR_RATE_HZ: "4",
    SIMULATOR_ANOMALY_EVERY_S: "4",
    ...env,
  });
  started.push(start);
  const base = `http://127.0.0.1:${backendPort}`;
  const alert = await waitFor(
    async () => {
      const res = await fetch(`${base}/api/v1/alerts?limit=1`);
      const body = await res.json();
      return body.alerts[0];
    },
    "a stored alert",
    120_000,
    500,
  );
  assert.equal(alert.stream_id, "default");
  assert.ok(alert.anomalous_features.length > 0);
  assert.ok(start.lines.some((l) => l.includes(`backend   http://localhost:${backendPort}`)));
  assert.ok(start.lines.some((l) => l.includes(`console   http://localhost:${backendPort}/`)));
  assert.ok(
    start.lines.some((l) => l.includes("simulator 4 frame/s with an anomaly about every 4 s")),
    "the simulator as it was set",
  );
  const console = await fetch(`${base}/`);
  assert.equal(console.status, 200);
  assert.match(await console.text(), /<h1>Now<\/h1>/);

  start.child.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => start.child.once("exit", resolve));
  assert.equal(code, 0, start.lines.slice(-20).join("\n"));
  for (const port of [backendPort, enginePort]) {
    await assert.rejects(
      fetch(`http://127.0.0.1:${port}/health/live`),
      `port ${port} still answers`,
    );
  }
  return start.lines;
}

test("npm start runs backend, engine and simulator until an alert is stored, Ctrl-C stops all, and the backend's database outlives it", async () => {
  const store = await mkdtemp(join(tmpdir(), "start-backend-"));
  try {
    // At LOG_LEVEL=warn no service logs that it listens: the URLs are announced all the same.
    const lines = await startUntilAlertThenInterrupt(NODE_TS, {
      LOG_LEVEL: "warn",
      PGLITE_DATA_DIR: store,
    });
    assert.ok(lines.some((l) => l.includes("[backend] exited 0")));
    assert.ok(lines.some((l) => l.includes("[engine ] exited 0")));
    assert.ok(lines.some((l) => l.includes(`database  ${store} (embedded PostgreSQL`)));

    const { service, base } = await startBackend({ PGLITE_DATA_DIR: store });
    started.push(service);
    const res = await fetch(`${base}/api/v1/alerts?limit=1`);
    assert.equal((await res.json()).alerts.length, 1, "the alert stored before the restart");
    await service.stop("SIGTERM");
  } finally {
    await rm(store, { recursive: true, force: true });
  }
});

test("npm start stops both services when npm itself is sent SIGTERM", async () => {
  const [backendPort, enginePort] = [await freePort(), await freePort()];
  const npm = spawnService(["npm", "start", "--silent"], {
    PORT: String(backendPort),
    APP_PORT: String(enginePort),
    DATABASE_URL: "",
    SIMULATOR_RATE_HZ: "0",
  });
  started.push(npm);
  await waitFor(
    async () => (npm.lines.some((l) => l.includes("Ctrl-C stops everything")) ? true : undefined),
    "the URLs announced",
    120_000,
    250,
  );
  npm.child.kill("SIGTERM");
  for (const port of [backendPort, enginePort]) {
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${port}/health/live`).then(
          () => undefined,
          () => true,
        ),
      `port ${port} closed after npm's SIGTERM`,
      60_000,
      250,
    );
  }
});

test("deno task start runs the same stack under Deno, and Ctrl-C stops both services cleanly", async () => {
  const lines = await startUntilAlertThenInterrupt(DENO_TS);
  // Deno's child_process reports the signal it sent rather than the exit code, so the clean
  // stop is checked from each service's own last words.
  assert.ok(
    lines.some((l) => l.includes("[backend] backend stopped")),
    lines.slice(-20).join("\n"),
  );
  assert.ok(
    lines.some((l) => l.includes("[engine ] engine stopped")),
    lines.slice(-20).join("\n"),
  );
});
