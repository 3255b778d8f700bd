import assert from "node:assert/strict";
import { after, test } from "node:test";
import { DENO_TS, NODE_TS, type ServiceProcess, spawnService } from "./_test/spawn_service.ts";
import { ourAlert, post } from "./alerts/_fixtures.ts";

const running: ServiceProcess[] = [];
after(() => Promise.all(running.map((s) => s.stop("SIGKILL"))));

for (const [runtime, command] of [
  ["node", NODE_TS],
  ["deno", DENO_TS],
] as const) {
  test(`backend boots under ${runtime}, stores an alert, serves the console and stops cleanly on SIGTERM`, async () => {
    const service = spawnService([...command, "backend/main.ts"], {
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: "",
      LOG_LEVEL: "info",
      // Longer than stop()'s 15 s grace: a live console stream that held the drain would fail.
      SHUTDOWN_TIMEOUT_MS: "60000",
    });
    running.push(service);
    const listening = await service.waitForLog((l) => l.msg === "backend listening", 90_000);
    assert.equal(listening.runtime, runtime);
    const base = `http://127.0.0.1:${listening.port}`;
    assert.equal((await fetch(`${base}/health/ready`)).status, 200);
    const alert = ourAlert();
    const res = await fetch(`${base}/api/v1/alert`, post(alert));
    assert.equal(res.status, 201);
    const stored = await (await fetch(`${base}/api/v1/alerts/${alert.alert_id}`)).json();
    assert.equal(stored.alert_id, alert.alert_id);
    // The console's pages (JSX), its files (uPlot resolved from node_modules) and its live
    // stream; an open stream must not hold the shutdown below.
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<h1>Now<\/h1>/);
    const uplot = await fetch(`${base}/assets/uPlot.iife.min.js`);
    assert.equal(uplot.status, 200);
    assert.ok((await uplot.arrayBuffer()).byteLength > 10_000);
    const events = await fetch(`${base}/events`);
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    assert.match((await reader.read()).value ?? "", /event: ready/);
    assert.equal(await service.stop("SIGTERM"), 0);
    assert.ok(
      service.lines.some((l) => l.includes('"backend stopped"')),
      service.lines.join("\n"),
    );
    await reader.cancel().catch(() => {});
  });
}

test("backend exits non-zero naming a bad configuration variable", async () => {
  const service = spawnService([...NODE_TS, "backend/main.ts"], { PORT: "70000" });
  running.push(service);
  const code = await new Promise<number | null>((resolve) => service.child.once("exit", resolve));
  assert.equal(code, 1);
  assert.ok(
    service.lines.some((l) => l.includes("'PORT'")),
    service.lines.join("\n"),
  );
});
