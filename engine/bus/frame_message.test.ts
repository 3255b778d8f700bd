import assert from "node:assert/strict";
import { test } from "node:test";
import { propagation } from "@opentelemetry/api";
import { core } from "@opentelemetry/sdk-node";
import { decodeFrame, encodeFrame, FRAME_HEADERS } from "./frame_message.ts";

test("frameMessage round-trips a frame through its headers and payload", () => {
  const values = Float32Array.of(1.5, Number.NaN, -3e38, 0);
  const sent = {
    streamId: "line-a",
    timestamp: 1_700_000_000_123,
    receivedAt: 1.5e12 + 0.25,
    model: "2.2.0",
    modelName: "boiler",
    values,
  };
  const { headers, payload } = encodeFrame(sent);
  values[0] = 99; // the payload is a copy
  const back = decodeFrame(headers, payload, 4);
  assert.ok(!("error" in back));
  assert.equal(back.streamId, "line-a");
  assert.equal(back.timestamp, sent.timestamp);
  assert.equal(back.receivedAt, sent.receivedAt);
  assert.equal(back.model, "2.2.0");
  assert.equal(back.modelName, "boiler");
  assert.deepEqual([...back.values], [1.5, Number.NaN, Math.fround(-3e38), 0]);
});

/** A frame of two values, 7 and 8, of stream "s". */
const twoValues = () =>
  encodeFrame({
    streamId: "s",
    timestamp: 1,
    receivedAt: 1,
    model: "m",
    modelName: "",
    values: Float32Array.of(7, 8),
  });

test("frameMessage decodes a payload at any byte offset", () => {
  const { headers, payload } = twoValues();
  const shifted = new Uint8Array(payload.length + 1).subarray(1);
  shifted.set(payload);
  const back = decodeFrame(headers, shifted, 2);
  assert.ok(!("error" in back));
  assert.deepEqual([...back.values], [7, 8]);
});

test("frameMessage refuses a frame that does not fit the model or lacks its stream", () => {
  const { headers, payload } = twoValues();
  assert.match(
    (decodeFrame(headers, payload, 3) as { error: string }).error,
    /8 bytes where the model takes 12/,
  );
  headers.set(FRAME_HEADERS.stream, "");
  assert.match((decodeFrame(headers, payload, 2) as { error: string }).error, /no stream id/);
  assert.match((decodeFrame(undefined, payload, 2) as { error: string }).error, /no stream id/);
});

test("frameMessage reads a frame of any model's size when no size is given, and no name as empty", () => {
  const { headers, payload } = twoValues();
  assert.equal(headers.get(FRAME_HEADERS.modelName), "", "no name header for the default model");
  const back = decodeFrame(headers, payload);
  assert.ok(!("error" in back));
  assert.deepEqual([...back.values], [7, 8]);
  assert.equal(back.modelName, "");
  assert.match(
    (decodeFrame(headers, payload.subarray(0, 7)) as { error: string }).error,
    /7 bytes: not float32 values/,
  );
});

test("frameMessage carries the frame's span context in a traceparent header", () => {
  const w3c = new core.W3CTraceContextPropagator();
  propagation.setGlobalPropagator(w3c);
  try {
    const span = {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: 1,
    };
    const { headers, payload } = encodeFrame({
      streamId: "s",
      timestamp: 1,
      receivedAt: 1,
      model: "m",
      modelName: "",
      values: Float32Array.of(7, 8),
      span,
    });
    assert.equal(headers.get("traceparent"), `00-${span.traceId}-${span.spanId}-01`);
    const back = decodeFrame(headers, payload, 2);
    assert.ok(!("error" in back));
    assert.equal(back.span?.traceId, span.traceId);
    assert.equal(back.span?.spanId, span.spanId);
    assert.equal(back.span?.traceFlags, 1);
    // An untraced frame has no header and decodes without a span.
    const plain = twoValues();
    assert.equal(plain.headers.has("traceparent"), false);
    const untraced = decodeFrame(plain.headers, plain.payload, 2);
    assert.ok(!("error" in untraced));
    assert.equal(untraced.span, undefined);
  } finally {
    propagation.disable();
  }
});
