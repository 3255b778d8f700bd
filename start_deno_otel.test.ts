// `OTEL_DENO=true deno task start` exports the backend and the engine, and nothing of the launcher itself (real processes, a small OTLP/HTTP JSON receiver).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { freePort } from "./backend/_test/free_port.ts";
import { spawnService, waitFor } from "./backend/_test/spawn_service.ts";

const DENO = new URL("node_modules/.bin/deno", import.meta.url).pathname;

test("OTEL_DENO=true deno task start exports as backend and engine only, not as a third service for the launcher", async () => {
  const names = new Set<string>();
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      try {
        const sent = JSON.parse(body) as Record<string, { resource?: { attributes?: unknown } }[]>;
        for (const list of Object.values(sent)) {
          for (const item of list ?? []) {
            const attributes = (item.resource?.attributes ?? []) as {
              key: string;
              value: { stringValue?: string };
            }[];
            const name = attributes.find((a) => a.key === "service.name")?.value.stringValue;
            // `deno task` itself logs its "Task start" line (scope deno::tools::task): Deno's
            // doing before any of ours runs, and said so in the README.
            const scopes = (
              Object.values(item as object)
                .filter(Array.isArray)
                .flat() as {
                scope?: { name?: string };
              }[]
            ).map((x) => x.scope?.name);
            if (scopes.length > 0 && scopes.every((n) => n === "deno::tools::task")) continue;
            if (name) names.add(name);
          }
        }
      } catch {
        names.add(`(unreadable ${req.url})`);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const dataDir = await mkdtemp(join(tmpdir(), "start-deno-otel-"));
  const [backendPort, enginePort] = [await freePort(), await freePort()];
  const start = spawnService([DENO, "task", "start"], {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    PORT: String(backendPort),
    APP_PORT: String(enginePort),
    DATABASE_URL: "",
    DATA_DIR: dataDir,
    SIMULATOR_RATE_HZ: "2",
  });
  try {
    await waitFor(
      async () =>
        start.lines.some((l) => l.includes(`console   http://localhost:${backendPort}/`))
          ? true
          : undefined,
      "both services listening",
      120_000,
      500,
    );
    // Both services' exports arrive (the launcher's health checks ran before this, each a span).
    await waitFor(
      async () => (names.has("backend") && names.has("engine") ? true : undefined),
      "exports from the backend and the engine",
      60_000,
      500,
    );
    assert.deepEqual([...names].sort(), ["backend", "engine"]);
  } finally {
    await start.stop("SIGINT", 30_000);
    receiver.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
