// HTTP app of an engine process: health, stats, errors, and the intake route when there is one.
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { HttpError } from "../../contracts/error.ts";
import type { EngineReady } from "../../contracts/health.ts";
import { answerUnrouted } from "../../contracts/unrouted.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { StatsSnapshot } from "../stats.ts";
import { adminGate, loopbackHostGate } from "./role_shell.ts";

type RoleStats = StatsSnapshot | (StatsSnapshot & Record<string, unknown>);

export interface RoleAppOptions {
  log: Logger;
  readiness(): EngineReady;
  /**
   * `GET /stats`: the engine's stats shape plus the role's own counters (an ingest replica's waits
   * on NATS for the workers' `machine_off` and `silent`, a second at most).
   */
  stats(): RoleStats | Promise<RoleStats>;
  resetStats(): void;
  /** `ADMIN_TOKEN`: when set, `POST /stats/reset` needs it as the bearer, like the operations API. */
  adminToken?: string;
  /** `POST /data-enqueue` (single process and ingest replicas), behind its gate. */
  intake?: { gate: MiddlewareHandler; enqueue: (c: Context) => Promise<Response> };
  middleware?: MiddlewareHandler[];
  /** Every route answers only requests addressed to a loopback name (`servesLoopbackOnly`). */
  loopbackOnly?: boolean;
}

/**
 * The routes and error bodies every engine process serves: the single-process engine (engine/app.ts,
 * with its own intake), the ingest replica and the inference worker.
 */
export function createRoleApp(options: RoleAppOptions): Hono {
  const { log } = options;
  const app = new Hono();
  for (const mw of options.middleware ?? []) app.use(mw);
  if (options.loopbackOnly) app.use(loopbackHostGate());
  app.onError(function toJsonError(error, c) {
    if (error instanceof HttpError) {
      return c.json(error.body, error.status as 400, error.headers);
    }
    log.error("unhandled error", error, { path: c.req.path });
    return c.json({ error: "internal_error", message: "internal error; see the engine log" }, 500);
  });
  app.notFound(answerUnrouted(app));
  app.get("/health/live", (c) =>
    c.json({ status: "ok", uptime_s: Math.round(performance.now()) / 1000 }),
  );
  app.get("/health/ready", (c) => {
    const body = options.readiness();
    return c.json(body, body.status === "ready" ? 200 : 503);
  });
  app.get("/stats", async (c) => c.json(await options.stats()));
  app.post("/stats/reset", adminGate(options.adminToken), (c) => {
    options.resetStats();
    return c.json({ status: "ok" });
  });
  const intake = options.intake;
  if (intake) app.post("/data-enqueue", intake.gate, (c) => intake.enqueue(c));
  return app;
}
