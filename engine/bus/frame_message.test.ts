import assert from "node:assert/strict";
import { test } from "node:test";
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
