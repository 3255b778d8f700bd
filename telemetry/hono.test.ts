import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { node, tracing } from "@opentelemetry/sdk-node";
import { Hono } from "hono";
import { otelMiddleware } from "./hono.ts";

const exporter = new tracing.InMemorySpanExporter();
const provider = new node.NodeTracerProvider({
  spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
});

function buildApp() {
  const app = new Hono();
  app.use(otelMiddleware("test"));
  app.get("/items/:id", (c) => {
    trace.getTracer("test").startActiveSpan("load item", (span) => span.end());
    return c.json({ id: c.req.param("id") });
  });
  app.post("/boom", () => {
    throw new TypeError("broken");
  });
  app.onError((error, c) => c.json({ error: "internal_error", message: error.message }, 500));
  return app;
}

function serverSpans() {
  return exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER);
}

describe("otelMiddleware", () => {
  before(() => provider.register());
  after(() => provider.shutdown());

  test("otelMiddleware names the server span by method and route with HTTP attributes", async () => {
    exporter.reset();
    const res = await buildApp().request("http://example.test:9000/items/42", {
      headers: { "user-agent": "probe/1" },
    });
    assert.equal(res.status, 200);
    const [span] = serverSpans();
    assert.equal(span.name, "GET /items/:id");
    assert.deepEqual(span.attributes, {
      "http.request.method": "GET",
      "url.path": "/items/42",
      "url.scheme": "http",
      "server.address": "example.test",
      "server.port": 9000,
      "user_agent.original": "probe/1",
      "http.response.status_code": 200,
      "http.route": "/items/:id",
    });
  });

  test("otelMiddleware continues the incoming traceparent and parents handler spans", async () => {
    exporter.reset();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentId = "00f067aa0ba902b7";
    await buildApp().request("/items/1", {
      headers: { traceparent: `00-${traceId}-${parentId}-01` },
    });
    const server = serverSpans()[0];
    assert.equal(server.spanContext().traceId, traceId);
    assert.equal(server.parentSpanContext?.spanId, parentId);
    const child = exporter.getFinishedSpans().find((s) => s.name === "load item");
    assert.ok(child, "handler span exported");
    assert.equal(child.spanContext().traceId, traceId);
    assert.equal(child.parentSpanContext?.spanId, server.spanContext().spanId);
  });

  test("otelMiddleware continues the first of two traceparent values", async () => {
    // Deno's fetch appends its own traceparent to one set by hand: `A, B`, which the W3C
    // propagator alone rejects, starting a new trace.
    exporter.reset();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentId = "00f067aa0ba902b7";
    const second = `00-${"c".repeat(32)}-${"d".repeat(16)}-01`;
    await buildApp().request("/items/1", {
      headers: { traceparent: `00-${traceId}-${parentId}-01, ${second}` },
    });
    const server = serverSpans()[0];
    assert.equal(server.spanContext().traceId, traceId);
    assert.equal(server.parentSpanContext?.spanId, parentId);
  });

  test("otelMiddleware nests under a server span the runtime already made active", async () => {
    // Deno.serve with OTEL_DENO=true starts its own span from the caller's traceparent and runs
    // the handler inside it: a second span from the header would be its sibling, and without a
    // header the root of a second trace.
    exporter.reset();
    const runtimeSpan = trace.getTracer("runtime").startSpan("POST", { kind: SpanKind.SERVER });
    await context.with(trace.setSpan(ROOT_CONTEXT, runtimeSpan), () =>
      buildApp().request("/items/1", {
        headers: { traceparent: `00-${"e".repeat(32)}-${"f".repeat(16)}-01` },
      }),
    );
    runtimeSpan.end();
    const server = serverSpans().find((s) => s.name === "GET /items/:id");
    assert.ok(server, "middleware span exported");
    assert.equal(server.spanContext().traceId, runtimeSpan.spanContext().traceId);
    assert.equal(server.parentSpanContext?.spanId, runtimeSpan.spanContext().spanId);
  });

  test("otelMiddleware marks a 5xx with error.type and an error status", async () => {
    exporter.reset();
    const res = await buildApp().request("/boom", { method: "POST" });
    assert.equal(res.status, 500);
    const [span] = serverSpans();
    assert.equal(span.name, "POST /boom");
    assert.equal(span.attributes["error.type"], "TypeError");
    assert.equal(span.attributes["http.response.status_code"], 500);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(span.events[0]?.name, "exception");
  });

  test("otelMiddleware names an unrouted request by its method only", async () => {
    exporter.reset();
    const res = await buildApp().request("/nowhere");
    assert.equal(res.status, 404);
    const [span] = serverSpans();
    assert.equal(span.name, "GET");
    assert.equal(span.attributes["http.route"], undefined);
    assert.equal(span.attributes["http.response.status_code"], 404);
    assert.notEqual(span.status.code, SpanStatusCode.ERROR);
  });
});
