import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { NODE_TS, type ServiceProcess, spawnService } from "../_test/spawn_service.ts";

const running: ServiceProcess[] = [];
const servers: ReturnType<typeof serve>[] = [];
after(async () => {
  await Promise.all(running.map((s) => s.stop("SIGKILL")));
  for (const server of servers) server.close();
});

/** An engine stand-in that is not ready until told, and takes every frame. */
async function engineStandIn() {
  let ready = false;
  const app = new Hono();
  app.get("/health/ready", (c) =>
    c.json({ status: ready ? "ready" : "loading" }, ready ? 200 : 503),
  );
  app.post("/data-enqueue", (c) => c.json({ status: "accepted" }, 202));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, ready: () => (ready = true) };
}

test("backend's start-up plan leaves a run an operator started while the engine was down", async () => {
  const engine = await engineStandIn();
  const backend = spawnService([...NODE_TS, "backend/main.ts"], {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: "",
    LOG_LEVEL: "info",
    ENGINE_URL: engine.url,
    SIMULATOR_RATE_HZ: "2",
    SIMULATOR_FEATURES: "50",
  });
  running.push(backend);
  const listening = await backend.waitForLog((l) => l.msg === "backend listening", 90_000);
  await backend.waitForLog((l) => l.msg === "simulator waiting for the engine");
  const base = `http://127.0.0.1:${listening.port}`;
  const operatorPlan = { rate_hz: 5, streams: 2, anomaly_every_s: 0 };
  const started = await fetch(`${base}/data/stream`, {
    method: "POST",
    body: JSON.stringify(operatorPlan),
  });
  assert.equal(started.status, 202);
  engine.ready();
  // Either the start-up plan stands down, or (the fault) it replaces the operator's run.
  const decided = await backend.waitForLog(
    (l) =>
      String(l.msg).startsWith("simulator start-up plan skipped") ||
      (l.msg === "simulator streaming" && l.rate_hz === 2),
  );
  assert.match(String(decided.msg), /skipped/);
  const status = await (await fetch(`${base}/data/stream`)).json();
  assert.deepEqual([status.running, status.plan], [true, operatorPlan]);
  assert.equal(await backend.stop("SIGTERM"), 0);
});
