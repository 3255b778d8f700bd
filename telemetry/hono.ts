// Hono middleware: one SERVER span per request, continuing the caller's W3C trace context.
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import type { MiddlewareHandler } from "hono";
import { matchedRoutes, routePath } from "hono/route";

/**
 * Reads propagation headers for `propagation.extract`. A `traceparent` sent twice arrives joined
 * as `A, B` (Deno's fetch appends its own to one set by hand, as our engine did): W3C Trace
 * Context calls that invalid and the propagator would start a new trace, so only the first value
 * is read, which is the one the sender wrote itself.
 */
const headerGetter: TextMapGetter<Headers> = {
  get(headers, key) {
    const value = headers.get(key) ?? undefined;
    return key === "traceparent" ? value?.split(",", 1)[0].trim() : value;
  },
  keys: (headers) => [...headers.keys()],
};

// Catch-all patterns are where middleware is mounted, not a route a request was served by.
const NOT_A_ROUTE = new Set(["", "*", "/*"]);

function serverAddress(host: string | undefined, url: string) {
  const raw = host ?? new URL(url).host;
  const colon = raw.lastIndexOf(":");
  // "[::1]:9000" and "localhost:9000" carry a port; "[::1]" does not.
  if (colon > raw.lastIndexOf("]"))
    return { address: raw.slice(0, colon), port: +raw.slice(colon + 1) };
  return { address: raw, port: url.startsWith("https:") ? 443 : 80 };
}

/**
 * A SERVER span per request named `METHOD route` (e.g. `POST /data-enqueue`) with the stable
 * HTTP semantic-convention attributes. The incoming `traceparent` is extracted with the global
 * propagator (or, under Deno, the runtime's own server span is the parent) and the rest of the
 * chain runs inside the span, so spans created by handlers are its children. With no SDK registered the span is a non-recording no-op and no attribute is
 * computed.
 *
 * Hand-written rather than `@hono/otel` (1.1.2 checked): that one sets no `url.path`,
 * `server.address`/`server.port` or `error.type`, and reads every request header even when
 * nothing records.
 *
 * @example app.use(otelMiddleware("engine"));
 */
export function otelMiddleware(service: string): MiddlewareHandler {
  const tracer = trace.getTracer(service);
  return async function otelServerSpan(c, next) {
    const method = c.req.method;
    // Under Deno with OTEL_DENO=true, Deno.serve has already started a server span from the
    // caller's traceparent and made it active: ours nests under it, or each request would make
    // two traces. On Node nothing is active here and the caller's traceparent is read.
    const active = context.active();
    const parent = trace.getSpan(active)
      ? active
      : propagation.extract(ROOT_CONTEXT, c.req.raw.headers, headerGetter);
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      const { address, port } = serverAddress(c.req.header("host"), c.req.url);
      span.setAttributes({
        "http.request.method": method,
        "url.path": c.req.path,
        "url.scheme": c.req.url.startsWith("https:") ? "https" : "http",
        "server.address": address,
        "server.port": port,
      });
      const agent = c.req.header("user-agent");
      if (agent) span.setAttribute("user_agent.original", agent);
    }
    try {
      await context.with(trace.setSpan(parent, span), next);
    } catch (error) {
      // Hono's compose normally routes errors to onError; this catches what escapes it.
      span.recordException(error as Error);
      span.setAttribute("error.type", (error as Error)?.name ?? "Error");
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      throw error;
    }
    if (span.isRecording()) {
      // The route of the handler that answered: the last matched one that is not a middleware
      // (`use`, method ALL), so a middleware mounted on a catch-all path does not name it.
      const handlers = matchedRoutes(c).filter((r) => r.method !== "ALL");
      const route = handlers.at(-1)?.path ?? routePath(c, -1);
      const status = c.res.status;
      span.setAttribute("http.response.status_code", status);
      if (!NOT_A_ROUTE.has(route)) {
        span.setAttribute("http.route", route);
        span.updateName(`${method} ${route}`);
      }
      if (status >= 500) {
        if (c.error) span.recordException(c.error);
        span.setAttribute("error.type", c.error?.name ?? String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
  };
}
