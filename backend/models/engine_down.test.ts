// An activation while nothing listens at ENGINE_URL: nothing was sent, so nothing changed, under either runtime.
import assert from "node:assert/strict";
import { test } from "node:test";
import { freePort } from "../_test/free_port.ts";
import { DENO_TS, NODE_TS, spawnService } from "../_test/spawn_service.ts";

for (const [runtime, command] of [
  ["Node", NODE_TS],
  ["Deno", DENO_TS],
] as const) {
  test(`under ${runtime}, activating a model while the engine is down answers 502 engine_unreachable: nothing was sent`, async () => {
    const port = await freePort();
    const backend = spawnService([...command, "backend/main.ts"], {
      HOST: "127.0.0.1",
      PORT: String(port),
      DATABASE_URL: "",
      SIMULATOR_RATE_HZ: "0",
      ENGINE_URL: `http://127.0.0.1:${await freePort()}`,
    });
    try {
      await backend.waitForLog((l) => l.msg === "backend listening", 90_000);
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/models/featurewise_ocsvm/activate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ version: "2.3.0+0123456789ab", by: "Ana", reason: "rollback" }),
      });
      const body = await res.json();
      assert.equal(res.status, 502, JSON.stringify(body));
      assert.equal(body.error, "engine_unreachable");
    } finally {
      await backend.stop("SIGTERM");
    }
  });
}
