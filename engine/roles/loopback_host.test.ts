// An engine on the loopback answers only requests addressed to a loopback name, with or without tokens: a web page whose own name resolves to 127.0.0.1 (DNS rebinding) can neither post frames nor read /stats. Real engine processes.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { jsonFrame } from "../_test/engine_harness.ts";
import type { RegistryEngine } from "../_test/registry_engine.ts";
import { trainedRegistry } from "../_test/registry_engine.ts";

const INGEST_TOKEN = "ingest-token-0123456789";

/** One request with the `Host` header a rebound page's browser sends (fetch cannot set it). */
function send(
  port: number,
  path: string,
  host: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: body === undefined ? "GET" : "POST",
        headers: {
          host,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("an engine's answers by the name it was addressed to", () => {
  const reg = trainedRegistry([{ features: 6, name: "boiler", frames: 200 }]);
  let open: RegistryEngine;
  let guarded: RegistryEngine;
  before(async () => {
    [open, guarded] = await Promise.all([
      reg.start({ APP_HOST: "127.0.0.1", ADMIN_TOKEN: "" }),
      reg.start({ APP_HOST: "127.0.0.1", INGEST_TOKEN }), // and the suite's ADMIN_TOKEN
    ]);
  });
  after(async () => {
    await Promise.all([open.engine.kill(), guarded.engine.kill()]);
  });
  const frame = (i: number) => {
    const f = reg.models[0];
    return jsonFrame(f.featureNames, f.normalFrame(i), { stream_id: "rebind-1" });
  };
  const accepted = async (port: number) =>
    JSON.parse((await send(port, "/stats", `127.0.0.1:${port}`)).body).frames.accepted;

  test("without tokens, a foreign Host gets 403 host_not_allowed on every route and no frame is taken", async () => {
    const port = open.port;
    const foreign = `rebind.attacker.example:${port}`;
    for (const [path, body] of [
      ["/stats", undefined],
      ["/health/ready", undefined],
      ["/data-enqueue", frame(0)],
    ] as const) {
      const res = await send(port, path, foreign, body);
      assert.equal(res.status, 403, `${path}: ${res.body}`);
      assert.equal(JSON.parse(res.body).error, "host_not_allowed");
    }
    assert.equal(await accepted(port), 0);
    // This machine's own clients, by every loopback name.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      assert.equal((await send(port, "/data-enqueue", host, frame(1))).status, 202, host);
    }
    assert.equal(await accepted(port), 3);
  });

  test("with both tokens set, a foreign Host is still refused: /stats takes no token", async () => {
    const port = guarded.port;
    const foreign = `rebind.attacker.example:${port}`;
    const bearer = { authorization: `Bearer ${INGEST_TOKEN}` };
    for (const [path, body] of [
      ["/stats", undefined],
      ["/data-enqueue", frame(2)],
    ] as const) {
      const res = await send(port, path, foreign, body, bearer);
      assert.equal(res.status, 403, `${path}: ${res.body}`);
      assert.match(JSON.parse(res.body).message, /header_up Host/);
    }
    assert.equal(
      (await send(port, "/data-enqueue", `localhost:${port}`, frame(3), bearer)).status,
      202,
    );
  });
});
