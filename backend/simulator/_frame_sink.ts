// Test helper: a real HTTP server on 127.0.0.1 standing where the engine's /data-enqueue is, with scripted answers.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";

export interface ReceivedFrame {
  headers: Headers;
  json: { timestamp: number; stream_id: string; data: Record<string, number> };
}

/** An answer the sink gives: a status, with headers, a JSON body and a delay if given. */
export interface ScriptedAnswer {
  status: number;
  headers?: Record<string, string>;
  /** The JSON body (default `{"status": "accepted"}` for 202, `{"status": "scripted"}` else). */
  body?: object;
  /** How long to wait before answering (ms). */
  delayMs?: number;
}

export interface FrameSinkOptions {
  /** The answer for a stream's frames once the script is used up (undefined: 202). */
  answerFor?: (streamId: string) => ScriptedAnswer | undefined;
}

/** Answers from the script in order (then `answerFor`, or 202); records every accepted frame. */
export async function startFrameSink(
  script: ScriptedAnswer[] = [],
  options: FrameSinkOptions = {},
) {
  const frames: ReceivedFrame[] = [];
  const arrivals: number[] = [];
  const app = new Hono();
  app.post("/data-enqueue", async (c) => {
    arrivals.push(performance.now());
    const inflated = c.req.raw.body!.pipeThrough(new DecompressionStream("gzip"));
    const json = JSON.parse(await new Response(inflated).text());
    const next = script.shift() ?? options.answerFor?.(json.stream_id) ?? { status: 202 };
    if (next.delayMs) await new Promise((resolve) => setTimeout(resolve, next.delayMs));
    if (next.status === 202) frames.push({ headers: c.req.raw.headers, json });
    return c.json(
      next.body ?? { status: next.status === 202 ? "accepted" : "scripted" },
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
