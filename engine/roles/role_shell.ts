// What every engine process shares: its options, lifecycle, readiness body and the intake gate.
import type { Context, MiddlewareHandler, Next } from "hono";
import { hostRefusal, isLoopbackHost, webPageRefusal } from "../../contracts/auth.ts";
import type { EngineConfig } from "../../contracts/config.ts";
import { HttpError } from "../../contracts/error.ts";
import type { EngineReady } from "../../contracts/health.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { reclaim } from "../_reclaim.ts";

/** Epoch milliseconds (frame timestamps). */
export interface Clock {
  now(): number;
}

/** What every role is built from: the single-process engine, the ingest replica, the worker. */
export interface RoleOptions {
  config: EngineConfig;
  log: Logger;
  /** The fetch alerts are sent with (tests and proxies pass their own). */
  fetch?: typeof fetch;
  clock?: Clock;
  /** Middleware mounted before every route (the OpenTelemetry server span). */
  middleware?: MiddlewareHandler[];
}

/** An engine process: its HTTP app and its lifecycle. */
export interface Role {
  app: import("hono").Hono;
  /** Loads what it needs and starts; rejects (status `failed`) when it cannot. */
  start(): Promise<void>;
  /** Graceful stop within `timeoutMs`: readiness and new frames turn 503 at once. */
  shutdown(timeoutMs: number): Promise<void>;
}

export type RoleStatus = EngineReady["status"];

/** Asks a refused producer to come back in a second. */
export const RETRY_AFTER = { "Retry-After": "1" } as const;

/**
 * Refuses (`422 frame_invalid_timestamp`) a frame dated more than `maxAheadS` seconds after
 * `now`: accepted, it would be its stream's newest, and every later frame of the stream would be
 * out of order until the engine forgot the stream.
 */
export function refuseFrameFromTheFuture(
  timestamp: number | undefined,
  now: number,
  maxAheadS: number,
): void {
  if (timestamp === undefined || timestamp <= now + maxAheadS * 1000) return;
  const ahead = Math.round((timestamp - now) / 1000);
  throw new HttpError(
    422,
    "frame_invalid_timestamp",
    `timestamp ${new Date(timestamp).toISOString()} is ${ahead} s ahead of the engine's clock (${new Date(now).toISOString()}); at most FRAME_MAX_AHEAD_S=${maxAheadS} s`,
  );
}

/** loading → ready → draining, or failed: read on every request (a field read, no I/O). */
export class Lifecycle {
  status: RoleStatus = "loading";
  error: string | undefined;

  ready(): void {
    this.status = "ready";
  }

  fail(error: Error): void {
    this.status = "failed";
    this.error = error.message;
  }

  drain(): void {
    if (this.status === "ready" || this.status === "loading") this.status = "draining";
  }

  /** Runs a role's start-up; a failure marks the role `failed` (readiness says why) and rejects. */
  async starting(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.fail(error as Error);
      throw error;
    }
  }

  /** Starts draining (readiness and new frames turn 503) and returns the shutdown's deadline. */
  stopping(timeoutMs: number): AbortSignal {
    this.drain();
    return AbortSignal.timeout(Math.max(1, timeoutMs));
  }
}

/** The parts of a `/health/ready` body a role knows beyond its lifecycle. */
export interface ReadinessParts {
  meta: ModelMetadata | undefined;
  provider?: EngineReady["execution_provider"];
  gpuAvailable?: boolean;
  queue?: EngineReady["queue"];
}

/** The `/health/ready` body (contracts/health.ts) of a role in `lifecycle` with `parts`. */
export function readinessBody(lifecycle: Lifecycle, parts: ReadinessParts): EngineReady {
  const { meta, provider = null } = parts;
  const body: EngineReady = {
    status: lifecycle.status,
    model: meta
      ? {
          name: meta.name,
          version: meta.version,
          n_features: meta.n_features,
          window_size: meta.window_size,
        }
      : null,
    execution_provider: provider,
    gpu: { available: Boolean(parts.gpuAvailable) || provider === "cuda" },
  };
  if (parts.queue) body.queue = parts.queue;
  if (lifecycle.error) body.error = lifecycle.error;
  return body;
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from timings. */
export function sameToken(given: string, expected: string): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= (given.charCodeAt(i % Math.max(1, given.length)) || 0) ^ expected.charCodeAt(i);
  }
  return diff === 0;
}

/** `401 unauthorized` when `token` is set and the request does not carry it as its bearer token. */
function bearerRefusal(c: Context, token: string | undefined, name: string): HttpError | undefined {
  if (!token) return undefined;
  // The scheme's name is case-insensitive (RFC 9110 §11.1), as the backend reads it.
  const given = c.req.header("authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
  if (given !== undefined && sameToken(given, token)) return undefined;
  return new HttpError(401, "unauthorized", `a valid bearer token (${name}) is required`, {
    "WWW-Authenticate": "Bearer",
  });
}

/**
 * Middleware in front of the operations API (`ADMIN_TOKEN`): `401 unauthorized` without the
 * bearer token when one is set. Without one it is open to this machine's own clients only: a
 * browser's request from another site (`Origin` not the engine's, or `Sec-Fetch-Site` other
 * than `same-origin`/`none`: a page posting text/plain needs no CORS approval) is refused `403
 * cross_site`, and one addressed to a name other than the loopback's (a page's own name made to
 * resolve here, DNS rebinding) `403 host_not_allowed`; an operator elsewhere sets ADMIN_TOKEN.
 */
export function adminGate(token: string | undefined): MiddlewareHandler {
  return async function adminGateMiddleware(c: Context, next: Next) {
    const refusal = bearerRefusal(c, token, "ADMIN_TOKEN");
    if (refusal) throw refusal;
    if (!token) {
      const host = hostRefusal(c.req.header("host"));
      if (host) throw new HttpError(403, "host_not_allowed", `${host}; set ADMIN_TOKEN`);
      const site = c.req.header("sec-fetch-site");
      const origin = c.req.header("origin");
      if (
        (site !== undefined && site !== "same-origin" && site !== "none") ||
        (origin !== undefined && origin !== new URL(c.req.url).origin)
      ) {
        throw new HttpError(
          403,
          "cross_site",
          "without ADMIN_TOKEN the operations API takes no request from a web page of another site",
        );
      }
    }
    await next();
  };
}

/**
 * Whether an engine process answers only requests addressed to a loopback name: it listens on the
 * loopback (`APP_HOST`, as `npm start` runs it), so its clients all address it as `localhost` or
 * `127.0.0.1`. A web page whose own name was made to resolve to 127.0.0.1 (DNS rebinding) is its
 * own origin to the browser: without this it could post frames (with no `INGEST_TOKEN`) and read
 * the stream ids in `/stats` (which takes no token, whatever is set). An engine listening beyond
 * the loopback is addressed by any name (a compose service, a host name), and its tokens guard it.
 */
export const servesLoopbackOnly = (config: Pick<EngineConfig, "APP_HOST">): boolean =>
  isLoopbackHost(config.APP_HOST);

/** Refuses, `403 host_not_allowed`, a request whose `Host` is no loopback name (see {@link servesLoopbackOnly}). */
export function loopbackHostGate(): MiddlewareHandler {
  return async function loopbackHost(c: Context, next: Next) {
    const host = hostRefusal(c.req.header("host"));
    if (host) {
      throw new HttpError(
        403,
        "host_not_allowed",
        `${host}; an engine listening on the loopback (APP_HOST) answers only those names: a proxy in front of it must send the engine's own address as Host (nginx does by default; Caddy: header_up Host {upstream_hostport}), or listen beyond the loopback with INGEST_TOKEN and ADMIN_TOKEN set`,
      );
    }
    await next();
  };
}

export interface IntakeGateOptions {
  lifecycle: Lifecycle;
  /** `INGEST_TOKEN`: when set, a request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** "engine", "ingest replica": named in the 503 messages. */
  what: string;
  /** Called for every request the gate refuses, with its error code. */
  onRefused?: (code: string) => void;
}

/**
 * Middleware in front of `/data-enqueue`: `503 shutting_down` while draining, `503
 * model_not_ready` until ready, `401 unauthorized` without the bearer token; without
 * INGEST_TOKEN, `403 cross_site` for a web page's request (`webPageRefusal`). It runs before the
 * body is read, so a refused frame costs nothing (Node reads and drops the body to keep the
 * connection; those chunks are reported to the collector).
 */
export function intakeGate(options: IntakeGateOptions): MiddlewareHandler {
  const { lifecycle, token, what, onRefused } = options;
  return async function intakeGateMiddleware(c: Context, next: Next) {
    const refusal = refuse(c);
    if (refusal) {
      reclaim(Number(c.req.header("content-length")) || 0);
      onRefused?.(refusal.code);
      throw refusal;
    }
    await next();
  };

  function refuse(c: Context): HttpError | undefined {
    if (lifecycle.status === "draining") {
      return new HttpError(503, "shutting_down", `${what} is shutting down`, RETRY_AFTER);
    }
    if (lifecycle.status !== "ready") {
      return new HttpError(503, "model_not_ready", `${what} is ${lifecycle.status}`, RETRY_AFTER);
    }
    const bearer = bearerRefusal(c, token, "INGEST_TOKEN");
    if (bearer || token) return bearer;
    const page = webPageRefusal(
      c.req.header("origin"),
      c.req.header("sec-fetch-site"),
      "a producer elsewhere sets INGEST_TOKEN",
    );
    return page ? new HttpError(403, "cross_site", page) : undefined;
  }
}
