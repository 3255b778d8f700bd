// Decodes a binary frame: little-endian float32 values in model order, checked like a JSON frame.
import { HttpError } from "../../contracts/error.ts";
import {
  DEFAULT_STREAM_ID,
  FLOAT32_MAX,
  frameProblemMessage,
  parseTimestamp,
  STREAM_ID_PATTERN,
  timestampProblemMessage,
} from "../../contracts/frame.ts";
import type { FeatureLayout } from "./feature_layout.ts";
import { frameProblem, type ScannedFrame } from "./json_frame_scanner.ts";

const KEY_LIMIT = 5;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies a binary frame's values into `into` and checks them: exactly `layout.size` float32
 * (422 `frame_invalid_shape` otherwise), each finite (422 `frame_invalid_value` naming the first
 * features in model order).
 */
export function decodeBinaryFrame(
  bytes: Uint8Array,
  layout: FeatureLayout,
  into: Float32Array,
): void {
  const size = layout.size;
  if (bytes.length !== size * 4) {
    throw new HttpError(
      422,
      "frame_invalid_shape",
      `${frameProblemMessage("frame_invalid_shape", [], 0)}: a binary frame holds ${size} float32 (${size * 4} bytes), got ${bytes.length} bytes`,
    );
  }
  if (LITTLE_ENDIAN) new Uint8Array(into.buffer, into.byteOffset, size * 4).set(bytes);
  else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < size; i++) into[i] = view.getFloat32(i * 4, true);
  }
  let invalid = 0;
  for (let i = 0; i < size; i++) {
    const x = into[i];
    // NaN fails both comparisons; ±Infinity fails one.
    if (!(x <= FLOAT32_MAX && x >= -FLOAT32_MAX)) invalid++;
  }
  if (invalid === 0) return;
  const keys: string[] = [];
  for (let i = 0; i < size && keys.length < KEY_LIMIT; i++) {
    const x = into[i];
    if (!(x <= FLOAT32_MAX && x >= -FLOAT32_MAX)) keys.push(layout.names[i]);
  }
  frameProblem("frame_invalid_value", keys, invalid);
}

/**
 * Reads a binary frame's envelope from its headers: `X-Stream-Id` (default "default") and
 * `X-Timestamp` (ISO 8601 with a zone, or epoch milliseconds as digits: from 1973-03-03, smaller
 * digits are refused as epoch seconds).
 */
export function binaryFrameEnvelope(headers: Headers): ScannedFrame {
  const rawTimestamp = headers.get("x-timestamp");
  let timestamp: number | undefined;
  if (rawTimestamp !== null) {
    const text = rawTimestamp.trim();
    const value = /^\d{1,16}$/.test(text) ? Number(text) : text;
    timestamp = parseTimestamp(value);
    if (timestamp === undefined) {
      throw new HttpError(
        422,
        "frame_invalid_timestamp",
        timestampProblemMessage(value, "X-Timestamp"),
      );
    }
  }
  const streamId = headers.get("x-stream-id") ?? DEFAULT_STREAM_ID;
  if (!STREAM_ID_PATTERN.test(streamId))
    frameProblem("frame_invalid_stream_id", ["X-Stream-Id"], 1);
  return { streamId, timestamp };
}
