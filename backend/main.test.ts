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
  test(`backend boots under ${runtime}, stores an alert and stops cleanly on SIGTERM`, async () => {
    const service = spawnService([...command, "backend/main.ts"], {
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: "",
      LOG_LEVEL: "info",
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
    assert.equal(await service.stop("SIGTERM"), 0);
    assert.ok(service.lines.some((l) => l.includes('"backend stopped"')));
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
