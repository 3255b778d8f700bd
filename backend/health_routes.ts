// Liveness and readiness probes of the backend: ready means the database answers.
import { Hono } from "hono";
import type { BackendReady } from "../contracts/health.ts";
import type { Database } from "./db/database.ts";

export interface HealthRoutesOptions {
  database: Pick<Database, "kind" | "ping">;
  now: () => number;
  isDraining: () => boolean;
  /** Longest wait for the database's answer before reporting it unreachable (ms). */
  pingTimeoutMs?: number;
}

/** `GET /health/live` (no I/O) and `GET /health/ready` (`SELECT 1` with a deadline). */
export function healthRoutes(options: HealthRoutesOptions): Hono {
  const { database, now, isDraining, pingTimeoutMs = 2000 } = options;
  const started = now();
  const app = new Hono();
  app.get("/live", (c) => c.json({ status: "ok", uptime_s: (now() - started) / 1000 }));
  app.get("/ready", async function ready(c) {
    const kind = database.kind;
    if (isDraining()) {
      const body: BackendReady = { status: "draining", database: { kind, reachable: true } };
      return c.json(body, 503);
    }
    try {
      await database.ping(AbortSignal.timeout(pingTimeoutMs));
      const body: BackendReady = { status: "ready", database: { kind, reachable: true } };
      return c.json(body);
    } catch (error) {
      const body: BackendReady = {
        status: "unavailable",
        database: { kind, reachable: false },
        error: (error as Error)?.message ?? String(error),
      };
      return c.json(body, 503);
    }
  });
  return app;
}
