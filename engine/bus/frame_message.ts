// A frame on the bus: headers name its stream, time and model; the payload is its float32 values.
import { type MsgHdrs, headers as natsHeaders } from "@nats-io/nats-core";
import {
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";

/** Frame headers on the bus; the payload is the float32 values in model order. */
export const FRAME_HEADERS = {
  stream: "Frame-Stream",
  timestamp: "Frame-Ts",
  /** Epoch ms (fractional) when the ingest replica received the request. */
  receivedAt: "Frame-Received",
  /** The version of the model that scores the frame. */
  model: "Frame-Model",
  /** The name of that model (`MODEL_ROUTES`); absent on frames of a single-model deployment. */
  modelName: "Frame-Model-Name",
} as const;

// The configured propagator (W3C `traceparent` by default) reads and writes NATS headers.
const SETTER: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};
const GETTER: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  // MsgHdrs answers "" for a header it lacks.
  get: (carrier, key) => carrier?.get(key) || undefined,
};

/** One frame as it travels: what the ingest replica publishes and a worker reads back. */
export interface FrameMessage {
  streamId: string;
  /** Epoch ms. */
  timestamp: number;
  /** Epoch ms (fractional) when the ingest replica received it. */
  receivedAt: number;
  /** Version of the model the frame was validated against. */
  model: string;
  /** Name of that model; empty when the frame does not say (the default model's). */
  modelName: string;
  values: Float32Array;
  /**
   * The ingest replica's `enqueue frame` span, carried in the headers (`traceparent`) so the
   * worker's batch links to it and an alert continues the frame's trace; absent when untraced.
   */
  span?: SpanContext;
}

/** The headers and payload (a copy: the caller's values may be reused at once) of a frame. */
export function encodeFrame(frame: FrameMessage): { headers: MsgHdrs; payload: Uint8Array } {
  const h = natsHeaders();
  h.set(FRAME_HEADERS.stream, frame.streamId);
  h.set(FRAME_HEADERS.timestamp, String(frame.timestamp));
  h.set(FRAME_HEADERS.receivedAt, String(frame.receivedAt));
  h.set(FRAME_HEADERS.model, frame.model);
  if (frame.modelName) h.set(FRAME_HEADERS.modelName, frame.modelName);
  if (frame.span && isSpanContextValid(frame.span)) {
    propagation.inject(trace.setSpanContext(ROOT_CONTEXT, frame.span), h, SETTER);
  }
  const { values } = frame;
  const payload = new Uint8Array(values.byteLength);
  payload.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return { headers: h, payload };
}

/**
 * Reads a frame back, or explains why it cannot be one (a message not written by
 * {@link encodeFrame}; with `nFeatures`, a frame of another size). Frames of several models share
 * a partition, so the size is checked against the model the frame names by its reader when
 * `nFeatures` is not given. The values are a copy, aligned for Float32Array and independent of
 * the client's read buffer.
 */
export function decodeFrame(
  headers: MsgHdrs | undefined,
  data: Uint8Array,
  nFeatures?: number,
): FrameMessage | { error: string } {
  const streamId = headers?.get(FRAME_HEADERS.stream) ?? "";
  const timestamp = Number(headers?.get(FRAME_HEADERS.timestamp));
  const receivedAt = Number(headers?.get(FRAME_HEADERS.receivedAt));
  const model = headers?.get(FRAME_HEADERS.model) ?? "";
  const modelName = headers?.get(FRAME_HEADERS.modelName) ?? "";
  if (!streamId) return { error: "no stream id" };
  if (!Number.isFinite(timestamp)) return { error: "no timestamp" };
  if (nFeatures !== undefined && data.byteLength !== nFeatures * 4) {
    return { error: `${data.byteLength} bytes where the model takes ${nFeatures * 4}` };
  }
  if (data.byteLength % 4 !== 0) return { error: `${data.byteLength} bytes: not float32 values` };
  const values = new Float32Array(data.byteLength / 4);
  new Uint8Array(values.buffer).set(data);
  const span = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, headers, GETTER));
  return {
    streamId,
    timestamp,
    receivedAt: Number.isFinite(receivedAt) ? receivedAt : timestamp,
    model,
    modelName,
    values,
    ...(span && isSpanContextValid(span) ? { span } : {}),
  };
}
