// Test helper: a real HTTP server on 127.0.0.1 standing where the engine's /data-enqueue is, with scripted answers.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";

export interface ReceivedFrame {
  headers: Headers;
  json: { timestamp: number; stream_id: string; data: Record<string, number> };
}

/** Answers from the script in order (then 202); records every decoded frame. */
export async function startFrameSink(
  script: { status: number; headers?: Record<string, string> }[] = [],
) {
  const frames: ReceivedFrame[] = [];
  const arrivals: number[] = [];
  const app = new Hono();
  app.post("/data-enqueue", async (c) => {
    arrivals.push(performance.now());
    const inflated = c.req.raw.body!.pipeThrough(new DecompressionStream("gzip"));
    const json = JSON.parse(await new Response(inflated).text());
    const next = script.shift() ?? { status: 202 };
    if (next.status === 202) frames.push({ headers: c.req.raw.headers, json });
    return c.json(
      { status: next.status === 202 ? "accepted" : "scripted" },
      next.status as 202,
      next.headers,
    );
  });
  app.get("/health/ready", (c) => c.json({ status: "ready" }));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    frames,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as import("node:http").Server).closeAllConnections();
      }),
  };
}
