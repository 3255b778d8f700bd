// The ingest entry point: request in, validated frame values out, in model order, or an HttpError.
import { availableParallelism } from "node:os";
import { reclaim } from "../_reclaim.ts";
import { binaryFrameEnvelope } from "./binary_frame.ts";
import { createDecodePool, type FrameTarget } from "./decode_pool.ts";
import type { FeatureLayout } from "./feature_layout.ts";
import { createFrameDecoder, type DecodedFrame, type DecodeJob } from "./frame_decoder.ts";
import { parseContentEncoding } from "./inflate_body.ts";
import { ModelLayouts } from "./model_layouts.ts";
import { type NodeBodyStream, readBody } from "./read_body.ts";

export interface IngestLimits {
  /** Cap on a compressed body as received (`MAX_BODY_BYTES`). */
  maxBodyBytes: number;
  /** Cap on a body once inflated, and so on an uncompressed one (`MAX_DECOMPRESSED_BYTES`). */
  maxDecompressedBytes: number;
  bodyTimeoutMs: number;
}

export interface IngestedFrame {
  /** From the JSON `stream_id` or the `X-Stream-Id` header (binary); default "default". */
  streamId: string;
  /** Epoch ms from JSON `timestamp` or the `X-Timestamp` header; undefined = reception time. */
  timestamp: number | undefined;
  /** Bytes received on the wire. */
  bodyBytes: number;
  /** The lane of the model the stream is routed to (0 with one model). */
  model: number;
  /** Its values' `frameChecksum` when its sender dated it (see `DecodedFrame.checksum`). */
  checksum: number | undefined;
}

export type { FrameTarget };

export interface Ingestor {
  /**
   * Reads, decodes and validates the frame in `request`, writing its values in model order into
   * `into` (one model: length = layout.size; may be a view on a SharedArrayBuffer), or, with
   * several models, into the array `into(model)` returns once the stream's model is known (it
   * may throw, e.g. a 429 when that model's queue is full). Throws HttpError
   * 400/408/413/415/422; touches nothing but the target. Under Node, `incoming` (the server's
   * `IncomingMessage`) is read instead of `request.body`, which is then never built.
   * `onArrived` is called once the body has been read in full, before it is decoded: where
   * decodes run in parallel, the order of these calls is the order the frames arrived in (see
   * `ArrivalOrder`); it is not called for a body that never arrived whole.
   */
  ingest(
    request: Request,
    into: FrameTarget,
    incoming?: NodeBodyStream,
    onArrived?: () => void,
  ): Promise<IngestedFrame>;
  close(): Promise<void>;
}

export interface IngestorOptions {
  /** One model's layout, or the layouts of several routed models. */
  layout: FeatureLayout | ModelLayouts;
  limits: IngestLimits;
  /** Worker threads for inflate + scan; 0 or undefined = choose automatically. */
  workers?: number;
}

/** Checks limits, quoting the parameter: `'maxBodyBytes' must be an integer >= 1, got 0`. */
export function checkIngestLimits(limits: IngestLimits): void {
  for (const key of ["maxBodyBytes", "maxDecompressedBytes", "bodyTimeoutMs"] as const) {
    const value = limits?.[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`'${key}' must be an integer >= 1, got ${value}`);
    }
  }
}

/** Reads the request's headers into a decode job; 415 for an unsupported coding, before any read. */
export function decodeJobOf(request: Request): DecodeJob {
  const type = request.headers.get("content-type") ?? "";
  const binary = /^\s*application\/octet-stream\s*(?:;|$)/i.test(type);
  return {
    encoding: parseContentEncoding(request.headers.get("content-encoding")),
    binary,
    timestamped: binary && request.headers.has("x-timestamp"),
  };
}

type Decode = (
  body: Uint8Array,
  job: DecodeJob,
  into: FrameTarget,
) => DecodedFrame | Promise<DecodedFrame>;

const layoutsOf = (layout: FeatureLayout | ModelLayouts) =>
  layout instanceof ModelLayouts ? layout : ModelLayouts.of(layout);

/** The ingest steps both ingestors share; only where `decode` runs differs. */
function ingestWith(
  layouts: ModelLayouts,
  limits: IngestLimits,
  decode: Decode,
  allocateBody?: (bytes: number) => Uint8Array,
) {
  return async function ingest(
    request: Request,
    into: FrameTarget,
    incoming?: NodeBodyStream,
    onArrived?: () => void,
  ): Promise<IngestedFrame> {
    if (typeof into !== "function" && into.length !== layouts.layouts[0].size) {
      throw new RangeError(
        `'into' must hold ${layouts.layouts[0].size} values, got ${into.length}`,
      );
    }
    const job = decodeJobOf(request);
    // A binary frame names its stream in a header: routed here, before its body is read.
    const envelope =
      job.binary && layouts.size > 1 ? binaryFrameEnvelope(request.headers) : undefined;
    if (envelope) {
      job.model = layouts.route(envelope.streamId);
      job.streamId = envelope.streamId;
    }
    const body = await readBody(request, limits, {
      encoding: job.encoding,
      rawLength: job.binary ? layouts.layouts[job.model ?? 0].size * 4 : -1,
      allocate: allocateBody,
      incoming,
    });
    onArrived?.();
    // Read before decoding: a worker pool takes the body's buffer (transferred, so empty here).
    const bodyBytes = body.length;
    // The socket's chunks the body was copied from are garbage now, and so is the body itself
    // once decoded, unless it goes back to the pool.
    reclaim(allocateBody ? bodyBytes : 2 * bodyBytes);
    const decoded = await decode(body, job, into);
    const scanned =
      decoded.streamId !== undefined ? decoded : (envelope ?? binaryFrameEnvelope(request.headers));
    return {
      streamId: scanned.streamId as string,
      timestamp: scanned.timestamp,
      bodyBytes,
      model: decoded.model,
      checksum: decoded.checksum,
    };
  };
}

/**
 * Creates an ingestor that decodes on the calling thread.
 *
 * @example
 * const ingestor = createThreadIngestor({ layout, limits });
 * const frame = await ingestor.ingest(request, slot); // slot: Float32Array(layout.size)
 */
export function createThreadIngestor(options: IngestorOptions): Ingestor {
  const { limits } = options;
  const layouts = layoutsOf(options.layout);
  checkIngestLimits(limits);
  const decoder = createFrameDecoder(layouts, limits.maxDecompressedBytes);
  let scratch: Float32Array | undefined;
  return {
    ingest: ingestWith(layouts, limits, function decodeHere(body, job, into) {
      if (typeof into !== "function") return decoder.decode(body, job, into);
      scratch ??= new Float32Array(layouts.maxSize);
      const frame = decoder.decode(body, job, scratch);
      into(frame.model).set(scratch.subarray(0, layouts.layouts[frame.model].size));
      return frame;
    }),
    async close() {},
  };
}

/** Worker count for `workers: 0`: one per core, at most 4 (see README.md for the measurements). */
export function autoWorkerCount(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/**
 * Creates the engine's ingestor (see {@link Ingestor}): headers and body are read on the calling
 * thread, inflate + scan run on a pool of worker threads (`workers`; 0 or undefined = one per
 * core, at most 4), so the request thread never blocks for a frame's milliseconds of decoding.
 *
 * @example
 * const ingestor = createIngestor({ layout, limits, workers: 0 });
 * const frame = await ingestor.ingest(request, slot);
 * await ingestor.close();
 */
export function createIngestor(options: IngestorOptions): Ingestor {
  const { limits } = options;
  const layouts = layoutsOf(options.layout);
  checkIngestLimits(limits);
  const workers = options.workers ?? 0;
  if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
    throw new RangeError(`'workers' must be an integer 0..64, got ${workers}`);
  }
  const pool = createDecodePool({
    layouts,
    maxDecompressedBytes: limits.maxDecompressedBytes,
    size: workers === 0 ? autoWorkerCount() : workers,
  });
  return {
    ingest: ingestWith(
      layouts,
      limits,
      (body, job, into) => pool.decode(body, job, into),
      (bytes) => pool.allocateBody(bytes),
    ),
    close: () => pool.close(),
  };
}
