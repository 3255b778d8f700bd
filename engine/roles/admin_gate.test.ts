import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { mountModelRoutes } from "../models_routes.ts";
import { createRoleApp } from "./role_app.ts";

// Without ADMIN_TOKEN the operations API is open to this machine's own clients, not to a web page
// the operator has open: a page may post text/plain to it with no CORS approval, or make its own
// name resolve to 127.0.0.1 (DNS rebinding) and be same-origin with it.
function engineApp(adminToken?: string) {
  let resets = 0;
  const app = createRoleApp({
    log: createLogger({ service: "engine", level: "silent" }),
    readiness: () => ({ status: "ready" }) as never,
    stats: () => ({}) as never,
    resetStats: () => {
      resets++;
    },
    adminToken,
  });
  // No models loaded: a request the gate lets through answers 503 model_not_ready.
  mountModelRoutes(app, () => undefined, adminToken);
  return { app, resets: () => resets };
}

const post = (headers: Record<string, string>, body = "") => ({
  method: "POST",
  headers: { "content-type": "text/plain", ...headers },
  body,
});

test("without ADMIN_TOKEN the operations API refuses another site's page and a foreign Host", async () => {
  const { app, resets } = engineApp();
  const base = "http://127.0.0.1:9000";
  const refusals: [Record<string, string>, string][] = [
    [{ origin: "http://attacker.example", "sec-fetch-site": "cross-site" }, "cross_site"],
    [{ origin: "http://attacker.example" }, "cross_site"],
    [{ "sec-fetch-site": "same-site" }, "cross_site"],
    [
      {
        host: "attacker.example:9000",
        origin: "http://attacker.example:9000",
        "sec-fetch-site": "same-origin",
      },
      "host_not_allowed",
    ],
  ];
  for (const [headers, code] of refusals) {
    for (const path of ["/stats/reset", "/models/featurewise_ocsvm/retrain"]) {
      const res = await app.request(`${base}${path}`, post(headers, '{"by":"mallory"}'));
      assert.equal(res.status, 403, `${path} ${JSON.stringify(headers)}`);
      assert.equal((await res.json()).error, code);
    }
  }
  assert.equal(resets(), 0, "nothing was reset");
  // This machine's own clients: curl, the backend forwarding an activation, a script.
  const ours: Record<string, string>[] = [
    {},
    { host: "localhost:9000" },
    { host: "127.0.0.1:9000" },
  ];
  for (const headers of ours) {
    assert.equal((await app.request(`${base}/stats/reset`, post(headers))).status, 200);
    const retrain = await app.request(`${base}/models/featurewise_ocsvm/retrain`, post(headers));
    assert.equal(retrain.status, 503, "past the gate: no model loaded yet");
  }
  assert.equal(resets(), 3);
});

test("with ADMIN_TOKEN the bearer decides, from any host", async () => {
  const { app, resets } = engineApp("admin-token-0123456789");
  const res = await app.request(
    "http://engine.plant:9000/stats/reset",
    post({ host: "engine.plant:9000", authorization: "Bearer admin-token-0123456789" }),
  );
  assert.equal(res.status, 200);
  const without = await app.request("http://engine.plant:9000/stats/reset", post({}));
  assert.equal(without.status, 401);
  assert.equal(resets(), 1);
});
