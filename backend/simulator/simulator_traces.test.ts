// Each simulated frame is a trace of its own under Deno's built-in telemetry, which traces every
// fetch (under Node the backend traces no outgoing request: the engine's span starts the trace).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { startOtlpReceiver } from "../../telemetry/_otlp_receiver.ts";
import { freePort } from "../_test/free_port.ts";
import { DENO_TS, spawnService, waitFor } from "../_test/spawn_service.ts";

/** An engine stand-in: ready, and takes every frame. */
let engine: Server;
let engineUrl: string;

before(async () => {
  engine = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const frame = req.url === "/data-enqueue";
      res.writeHead(frame ? 202 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify(frame ? { status: "accepted" } : { status: "ready" }));
    });
  });
  await new Promise<void>((resolve) => engine.listen(0, "127.0.0.1", resolve));
  engineUrl = `http://127.0.0.1:${(engine.address() as AddressInfo).port}`;
});
after(() => {
  engine.closeAllConnections();
  engine.close();
});

test("under Deno, each frame the simulator sends is a trace of its own", async () => {
  const receiver = await startOtlpReceiver();
  const port = await freePort();
  const backend = spawnService([...DENO_TS, "backend/main.ts"], {
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: "",
    ENGINE_URL: engineUrl,
    SIMULATOR_RATE_HZ: "5",
    SIMULATOR_FEATURES: "50",
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "200",
  });
  try {
    const frames = () =>
      receiver.spans.filter(
        (s) => s.kind === 3 && JSON.stringify(s.attributes).includes("/data-enqueue"),
      );
    await waitFor(
      async () => (frames().length >= 8 ? true : undefined),
      "8 frame spans",
      90_000,
    ).catch((error) => {
      const seen = receiver.spans.map((x) => `${x.kind} ${x.name}`).join(", ");
      throw new Error(
        `${error.message}; spans: ${seen}; log: ${backend.lines.slice(-5).join("\n")}`,
      );
    });
    const spans = frames();
    const traces = new Set(spans.map((s) => s.traceId));
    assert.equal(traces.size, spans.length, "one trace per frame");
    for (const s of spans) assert.equal(s.parentSpanId, "", `${s.name} has no parent`);
  } finally {
    await backend.stop("SIGTERM");
    await receiver.close();
  }
});
