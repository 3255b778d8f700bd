// Inflate + decode of one frame body into model order: the work an ingest thread or worker does.

import { HttpError } from "../../contracts/error.ts";
import { DEFAULT_STREAM_ID, STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { reclaim } from "../_reclaim.ts";
import { clipInput } from "./_clip_input.ts";
import { decodeBinaryFrame } from "./binary_frame.ts";
import type { FeatureLayout } from "./feature_layout.ts";
import { frameChecksum } from "./frame_checksum.ts";
import { type ContentEncoding, inflateBody } from "./inflate_body.ts";
import { JsonFrameScanner, peekStreamId } from "./json_frame_scanner.ts";
import { ModelLayouts } from "./model_layouts.ts";

/** How to read a body, decided on the request thread from its headers. */
export interface DecodeJob {
  encoding: ContentEncoding;
  /** `Content-Type: application/octet-stream`: float32 values, envelope in headers. */
  binary: boolean;
  /** A binary frame's lane and stream, routed from its headers (several models only). */
  model?: number;
  streamId?: string;
  /** A binary frame dated by its `X-Timestamp` header (a JSON frame's date is in its body). */
  timestamped?: boolean;
}

/** A decoded frame: its model's lane, and the JSON envelope (`streamId` undefined for binary). */
export interface DecodedFrame {
  model: number;
  streamId?: string;
  timestamp?: number;
  /**
   * `frameChecksum` of its values when the frame is dated by its sender (a JSON `timestamp`, a
   * binary `X-Timestamp`): a repeat of it is then told from another frame at the same millisecond.
   * A frame dated at reception needs none: no client can send it again under that date.
   */
  checksum?: number;
}

/** Decodes frame bodies for an intake's layouts; reuses its scratch state, so one per thread. */
export interface FrameDecoder {
  readonly layouts: ModelLayouts;
  /** Fills `into` (length >= the frame's model's size) from index 0. */
  decode(body: Uint8Array, job: DecodeJob, into: Float32Array): DecodedFrame;
}

/**
 * The stream a JSON frame is routed by: its `stream_id`, "default" when it has none, `undefined`
 * when it names no valid stream (not a string, or not a stream id: any length, any characters).
 * Such a frame is not routed: the first model's scanner refuses it exactly as a single-model
 * engine does (`frame_invalid_stream_id` once the rest of it is right), so a client's text
 * reaches the route globs only once it is a stream id, at most 128 characters.
 */
function routedStream(bytes: Uint8Array): string | undefined {
  const id = peekStreamId(bytes);
  if (id === undefined) return DEFAULT_STREAM_ID;
  return id !== null && STREAM_ID_PATTERN.test(id) ? id : undefined;
}

/**
 * Creates a decoder: inflate (capped at `maxDecompressedBytes`), then the JSON scanner of the
 * stream's model or the binary copy. With several models a JSON frame's `stream_id` is read
 * first (free when it leads the object, one skim of the body otherwise) to pick the scanner; a
 * frame that does not fit its model is refused with the usual code, the message naming the
 * model. A frame whose `stream_id` is not a stream id is not routed (see `routedStream`).
 * Throws HttpError 400/413/422.
 */
export function createFrameDecoder(
  layouts: ModelLayouts | FeatureLayout,
  maxDecompressedBytes: number,
): FrameDecoder {
  const models = layouts instanceof ModelLayouts ? layouts : ModelLayouts.of(layouts);
  const scanners = models.layouts.map((layout) => new JsonFrameScanner(layout));
  const routed = models.size > 1;
  return {
    layouts: models,
    decode(body, job, into) {
      const binaryModel = job.binary ? (job.model ?? 0) : -1;
      const bytes = inflateBody(
        body,
        job.encoding,
        maxDecompressedBytes,
        job.binary ? models.layouts[binaryModel].size * 4 : -1,
      );
      let model = binaryModel;
      // The stream the frame was routed by (the ingestor checked a binary frame's header).
      let stream = routed && job.binary ? job.streamId : undefined;
      try {
        const checksum = () => frameChecksum(into.subarray(0, models.layouts[model].size));
        if (job.binary) {
          decodeBinaryFrame(bytes, models.layouts[model], into);
          return { model, checksum: job.timestamped ? checksum() : undefined };
        }
        if (routed) stream = routedStream(bytes);
        model = stream === undefined ? 0 : models.route(stream);
        const scanned = scanners[model].scan(bytes, into);
        return {
          model,
          ...scanned,
          checksum: scanned.timestamp !== undefined ? checksum() : undefined,
        };
      } catch (error) {
        if (stream !== undefined && error instanceof HttpError && error.status === 422) {
          throw new HttpError(
            422,
            error.code,
            `stream ${JSON.stringify(clipInput(stream))} is scored by model ${JSON.stringify(models.name(model))} (${models.layouts[model].size} features): ${error.message}`,
          );
        }
        throw error;
      } finally {
        if (bytes !== body) reclaim(bytes.byteLength);
      }
    },
  };
}
