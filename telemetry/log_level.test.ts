// LOG_LEVEL governs telemetry's own lines too: a quiet service stays quiet when its collector is down.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { test } from "node:test";
import { freePort } from "../backend/_test/free_port.ts";
import { spawnEngine } from "../engine/_test/engine_process.ts";
import { waitFor } from "./_otlp_receiver.ts";
import { logLevelFrom } from "./setup.ts";

test("logLevelFrom reads LOG_LEVEL as the services do, info otherwise", () => {
  assert.equal(logLevelFrom(" Silent "), "silent");
  assert.equal(logLevelFrom("error"), "error");
  assert.equal(logLevelFrom(undefined), "info");
  assert.equal(logLevelFrom("toString"), "info");
});

test("the engine with LOG_LEVEL=silent writes no opentelemetry line while its exports fail", async (t) => {
  // A collector that takes each connection and drops it: every export fails.
  let connections = 0;
  const collector = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  collector.listen(0, "127.0.0.1");
  await once(collector, "listening");
  t.after(() => collector.close());
  const { port } = collector.address() as { port: number };
  const engine = spawnEngine("node", {
    APP_PORT: String(await freePort()),
    LOG_LEVEL: "silent",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_TIMEOUT: "300",
    OTEL_METRIC_EXPORT_INTERVAL: "200",
    OTEL_METRIC_EXPORT_TIMEOUT: "300",
    DEFAULT_DEVICE: "cpu",
    DECISIONS_POLL_S: "0",
  });
  try {
    // Several failed exports, each reported through diag as it fails (info would log them).
    await waitFor("failed exports", () => connections >= 5, 90_000);
  } finally {
    await engine.kill("SIGTERM");
  }
  const lines = engine
    .output()
    .split("\n")
    .filter((l) => l.includes("opentelemetry:"));
  assert.deepEqual(lines, []);
});
