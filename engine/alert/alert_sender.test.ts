import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { context, propagation, trace } from "@opentelemetry/api";
import { node, tracing } from "@opentelemetry/sdk-node";
import { verifyWebhook } from "../../contracts/webhook_signature.ts";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { createAlertSender } from "./alert_sender.ts";

let sink: AlertSink;
before(async () => {
  sink = await startAlertSink();
});
after(() => sink.close());

const record = () => {
  const id = crypto.randomUUID();
  return { id, body: JSON.stringify({ alert_id: id }) };
};
const fast = { maxRetries: 3, retryBaseMs: 5, retryMaxMs: 20, timeoutMs: 2000 };

/** What the test sink answers to a status of 300 or more. */
const SINK_ERROR = '{"error":"internal_error","message":"test"}';

test("alertSender retries a failing sink and succeeds once it recovers", async () => {
  sink.requests.length = 0;
  sink.script = [500, 503, { status: 429, retryAfter: "0" }];
  const send = createAlertSender({ url: sink.url, ...fast });
  const r = record();
  const result = await send(r);
  assert.deepEqual(result, { outcome: "delivered", attempts: 4, status: 201 });
  assert.equal(sink.requests.length, 4);
  assert.ok(sink.delivered.has(r.id));
  for (const req of sink.requests) assert.equal(req.body, r.body);
});

test("alertSender does not retry a 400", async () => {
  sink.requests.length = 0;
  sink.script = [400];
  const send = createAlertSender({ url: sink.url, ...fast });
  const result = await send(record());
  // The refusal's body says why (the sink's error JSON).
  assert.deepEqual(result, { outcome: "rejected", attempts: 1, status: 400, reason: SINK_ERROR });
  assert.equal(sink.requests.length, 1);
});

test("alertSender gives up after MAX_RETRIES retries", async () => {
  sink.requests.length = 0;
  sink.script = [500, 500, 500, 500, 500];
  const send = createAlertSender({ url: sink.url, ...fast, maxRetries: 2 });
  const result = await send(record());
  assert.deepEqual(result, { outcome: "failed", attempts: 3, status: 500, reason: SINK_ERROR });
  assert.equal(sink.requests.length, 3);
  sink.script = [];
});

test("alertSender times out a hanging sink and retries", async () => {
  sink.requests.length = 0;
  sink.script = ["hang"];
  // Long enough for the second attempt's answer on a busy host, short for the hanging first.
  const send = createAlertSender({ url: sink.url, ...fast, timeoutMs: 1000 });
  const result = await send(record());
  assert.equal(result.outcome, "delivered");
  assert.equal(result.attempts, 2);
});

test("alertSender treats a refused connection as retryable", async () => {
  const send = createAlertSender({
    url: "http://127.0.0.1:1/api/v1/alert",
    ...fast,
    maxRetries: 1,
  });
  const result = await send(record());
  assert.equal(result.outcome, "failed");
  assert.equal(result.attempts, 2);
  assert.ok(result.error instanceof Error);
});

test("alertSender signs deliveries verifiably when a secret is set", async () => {
  sink.requests.length = 0;
  const secret = "a-test-signing-secret";
  const send = createAlertSender({ url: sink.url, ...fast, signingSecret: secret });
  const r = record();
  await send(r);
  const req = sink.requests[0];
  assert.equal(req.headers["webhook-id"], r.id);
  await verifyWebhook({ secret, headers: new Headers(req.headers), body: req.body });
});

test("alertSender rejects out-of-range options naming the variable", () => {
  assert.throws(
    () => createAlertSender({ url: sink.url, ...fast, maxRetries: 6 }),
    /'MAX_RETRIES'/,
  );
  assert.throws(
    () => createAlertSender({ url: sink.url, ...fast, retryMaxMs: 1 }),
    /'RETRY_MAX_MS'/,
  );
});

describe("alertSender traced", () => {
  const exporter = new tracing.InMemorySpanExporter();
  const provider = new node.NodeTracerProvider({
    spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
  });
  before(() => provider.register());
  after(async () => {
    await provider.shutdown();
    for (const api of [trace, context, propagation]) api.disable();
  });
  const frameTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const frameSpan = "00f067aa0ba902b7";
  const traced = () => ({ ...record(), traceparent: `00-${frameTrace}-${frameSpan}-01` });
  const alertSpan = () => {
    const span = exporter.getFinishedSpans().find((s) => s.name === "POST alert");
    assert.ok(span, "POST alert span exported");
    assert.equal(span.spanContext().traceId, frameTrace);
    assert.equal(span.parentSpanContext?.spanId, frameSpan);
    return span.spanContext();
  };

  test("alertSender sends the traceparent of its POST alert span, in the alert's trace", async () => {
    exporter.reset();
    sink.requests.length = 0;
    const send = createAlertSender({ url: sink.url, ...fast, fetchPropagates: false });
    assert.equal((await send(traced())).outcome, "delivered");
    const { traceId, spanId } = alertSpan();
    assert.equal(sink.requests[0].headers.traceparent, `00-${traceId}-${spanId}-01`);
  });

  test("alertSender leaves traceparent to a fetch that writes it from the active span", async () => {
    // What Deno's fetch does with OTEL_DENO=true: it appends the active span's traceparent, so
    // one written by the sender as well would arrive as `A, B`.
    exporter.reset();
    sink.requests.length = 0;
    const written: (string | null)[] = [];
    const tracingFetch: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      written.push(headers.get("traceparent"));
      propagation.inject(context.active(), headers, { set: (h, k, v) => h.append(k, v) });
      return fetch(input, { ...init, headers });
    };
    const send = createAlertSender({
      url: sink.url,
      ...fast,
      fetch: tracingFetch,
      fetchPropagates: true,
    });
    assert.equal((await send(traced())).outcome, "delivered");
    assert.deepEqual(written, [null], "the sender wrote no traceparent");
    const { traceId, spanId } = alertSpan();
    assert.equal(sink.requests[0].headers.traceparent, `00-${traceId}-${spanId}-01`);
  });
});
