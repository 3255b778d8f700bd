import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../telemetry/logger.ts";
import { createRoleApp } from "./role_app.ts";
import { intakeGate, Lifecycle } from "./role_shell.ts";

// Without INGEST_TOKEN, frames come from producers (programs), which send no Origin and no
// Sec-Fetch-Site; a web page the operator has open could otherwise post text/plain frames (the
// engine reads any content type) under any stream name, or reach it by DNS rebinding.
function engineApp(token?: string) {
  const lifecycle = new Lifecycle();
  lifecycle.ready();
  const refused: string[] = [];
  let taken = 0;
  const app = createRoleApp({
    log: createLogger({ service: "engine", level: "silent" }),
    readiness: () => ({ status: "ready" }) as never,
    stats: () => ({}) as never,
    resetStats: () => {},
    intake: {
      gate: intakeGate({
        lifecycle,
        token,
        what: "engine",
        onRefused: (code) => refused.push(code),
      }),
      enqueue: async (c) => {
        taken++;
        return c.json({ status: "accepted" }, 202);
      },
    },
  });
  return { app, refused, taken: () => taken };
}

const post = (headers: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "text/plain", "x-stream-id": "press-1", ...headers },
  body: '{"data":{}}',
});

test("without INGEST_TOKEN the intake refuses a web page's frames and takes a producer's", async () => {
  const { app, refused, taken } = engineApp();
  const base = "http://127.0.0.1:9000/data-enqueue";
  const pages: Record<string, string>[] = [
    { origin: "http://attacker.example", "sec-fetch-site": "cross-site" },
    { origin: "http://attacker.example" },
    { "sec-fetch-site": "same-site" },
    // DNS rebinding: the page's own name resolves here, so it is same-origin with it.
    {
      host: "attacker.example:9000",
      origin: "http://attacker.example:9000",
      "sec-fetch-site": "same-origin",
    },
  ];
  for (const headers of pages) {
    const res = await app.request(base, post(headers));
    assert.equal(res.status, 403, JSON.stringify(headers));
    const body = await res.json();
    assert.equal(body.error, "cross_site");
    assert.match(body.message, /INGEST_TOKEN/);
  }
  assert.equal(taken(), 0, "no frame was taken");
  assert.deepEqual(refused, ["cross_site", "cross_site", "cross_site", "cross_site"]);
  // Producers: curl, the simulator, an upstream service (no Origin); a browser's address bar.
  const producers: Record<string, string>[] = [
    {},
    { host: "10.0.0.5:9000" },
    { "sec-fetch-site": "none" },
  ];
  for (const headers of producers) {
    const res = await app.request(base, post(headers));
    assert.equal(res.status, 202, JSON.stringify(headers));
  }
  assert.equal(taken(), 3);
});

test("with INGEST_TOKEN the bearer decides, wherever the request comes from", async () => {
  const { app, taken } = engineApp("ingest-token-0123456789");
  const base = "http://127.0.0.1:9000/data-enqueue";
  const page = { origin: "http://attacker.example", "sec-fetch-site": "cross-site" };
  assert.equal((await app.request(base, post(page))).status, 401);
  const bearer = { authorization: "Bearer ingest-token-0123456789" };
  assert.equal((await app.request(base, post({ ...page, ...bearer }))).status, 202);
  assert.equal(taken(), 1);
});
