import assert from "node:assert/strict";
import { after, test } from "node:test";
import { freePort } from "./_test/free_port.ts";
import { NODE_TS, type ServiceProcess, spawnService, waitFor } from "./_test/spawn_service.ts";

let start: ServiceProcess | undefined;
after(() => start?.stop("SIGKILL"));

test("npm start runs backend, engine and simulator until an alert is stored, and Ctrl-C stops all", async () => {
  const [backendPort, enginePort] = [await freePort(), await freePort()];
  start = spawnService([...NODE_TS, "start.ts"], {
    PORT: String(backendPort),
    APP_PORT: String(enginePort),
    DATABASE_URL: "",
    // Faster than the demo's 1 Hz / 20 s so the test is short; the wiring is the same.
    SIMULATOR_RATE_HZ: "4",
    SIMULATOR_ANOMALY_EVERY_S: "4",
  });
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

  start.child.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => start!.child.once("exit", resolve));
  assert.equal(code, 0, start.lines.slice(-20).join("\n"));
  assert.ok(start.lines.some((l) => l.includes("[backend] exited 0")));
  assert.ok(start.lines.some((l) => l.includes("[engine ] exited 0")));
  for (const port of [backendPort, enginePort]) {
    await assert.rejects(
      fetch(`http://127.0.0.1:${port}/health/live`),
      `port ${port} still answers`,
    );
  }
});
