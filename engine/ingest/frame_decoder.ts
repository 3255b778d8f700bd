// Inflate + decode of one frame body into model order: the work an ingest thread or worker does.

import { HttpError } from "../../contracts/error.ts";
import { DEFAULT_STREAM_ID } from "../../contracts/frame.ts";
import { reclaim } from "../_reclaim.ts";
import { decodeBinaryFrame } from "./binary_frame.ts";
import type { FeatureLayout } from "./feature_layout.ts";
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
}

/** A decoded frame: its model's lane, and the JSON envelope (`streamId` undefined for binary). */
export interface DecodedFrame {
  model: number;
  streamId?: string;
  timestamp?: number;
}

/** Decodes frame bodies for an intake's layouts; reuses its scratch state, so one per thread. */
export interface FrameDecoder {
  readonly layouts: ModelLayouts;
  /** Fills `into` (length >= the frame's model's size) from index 0. */
  decode(body: Uint8Array, job: DecodeJob, into: Float32Array): DecodedFrame;
}

/**
 * Creates a decoder: inflate (capped at `maxDecompressedBytes`), then the JSON scanner of the
 * stream's model or the binary copy. With several models a JSON frame's `stream_id` is read
 * first (free when it leads the object, one skim of the body otherwise) to pick the scanner; a
 * frame that does not fit its model is refused with the usual code, the message naming the
 * model. Throws HttpError 400/413/422.
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
      try {
        if (job.binary) {
          decodeBinaryFrame(bytes, models.layouts[model], into);
          return { model };
        }
        model = routed ? models.route(peekStreamId(bytes) ?? DEFAULT_STREAM_ID) : 0;
        return { model, ...scanners[model].scan(bytes, into) };
      } catch (error) {
        if (routed && error instanceof HttpError && error.status === 422 && model >= 0) {
          const stream = job.binary ? job.streamId : peekStreamId(bytes);
          throw new HttpError(
            422,
            error.code,
            `stream ${JSON.stringify(stream ?? DEFAULT_STREAM_ID)} is scored by model ${JSON.stringify(models.name(model))} (${models.layouts[model].size} features): ${error.message}`,
          );
        }
        throw error;
      } finally {
        if (bytes !== body) reclaim(bytes.byteLength);
      }
    },
  };
}
