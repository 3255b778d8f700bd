import assert from "node:assert/strict";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { serve } from "@hono/node-server";
import { createBackendApp } from "../app.ts";
import { openDatabase } from "../db/database.ts";
import { migrate } from "../db/migrate.ts";
import { createAuth } from "./auth.ts";

// Without sign-in the backend listens on the loopback only, but a web page whose own name is made
// to resolve to 127.0.0.1 (DNS rebinding) is same-origin with it in the browser: only the Host
// header it sends still names the page's site. Over real HTTP, as a browser's request arrives.
let db: Awaited<ReturnType<typeof openDatabase>>;
let server: ReturnType<typeof serve>;
let port = 0;
before(async () => {
  db = await openDatabase();
  await migrate(db.sql);
  const app = createBackendApp({
    database: db,
    auth: createAuth({ mode: "none", publicUrl: "https://console.plant" }),
  });
  server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
  await new Promise((resolve) => server.once("listening", resolve));
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await db.close();
});

/** A request to the backend carrying `host` as its Host header. */
function ask(method: string, path: string, host: string, body?: unknown) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const origin = `http://${host}`;
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        headers: {
          host,
          ...(data === undefined
            ? {}
            : { "content-type": "application/json", origin, "sec-fetch-site": "same-origin" }),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

const silence = {
  matchers: { stream: "*" },
  ends_at: new Date(Date.now() + 3_600_000).toISOString(),
  confirm_all: true,
  reason: "rebinding",
  created_by: "mallory",
};
const silences = async () => (await db.sql`SELECT count(*)::int AS n FROM silence`)[0].n as number;

test("without sign-in, a request addressed to another site's name is refused, and changes nothing", async () => {
  const foreign = `attacker.example:${port}`;
  const read = await ask("GET", "/api/v1/incidents", foreign);
  assert.equal(read.status, 403, read.body);
  assert.equal(JSON.parse(read.body).error, "host_not_allowed");
  const act = await ask("POST", "/api/v1/silences", foreign, silence);
  assert.equal(act.status, 403, act.body);
  assert.equal(JSON.parse(act.body).error, "host_not_allowed");
  assert.equal(await silences(), 0);
});

test("without sign-in, this machine's names and PUBLIC_URL's are answered", async () => {
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, "console.plant"]) {
    const read = await ask("GET", "/api/v1/incidents", host);
    assert.equal(read.status, 200, `${host}: ${read.body}`);
  }
  const act = await ask("POST", "/api/v1/silences", `localhost:${port}`, silence);
  assert.equal(act.status, 201, act.body);
  assert.equal(await silences(), 1);
});
