// Inflate + decode of one frame body into model order: the work an ingest thread or worker does.

import { reclaim } from "../_reclaim.ts";
import { decodeBinaryFrame } from "./binary_frame.ts";
import type { FeatureLayout } from "./feature_layout.ts";
import { type ContentEncoding, inflateBody } from "./inflate_body.ts";
import { JsonFrameScanner, type ScannedFrame } from "./json_frame_scanner.ts";

/** How to read a body, decided on the request thread from its headers. */
export interface DecodeJob {
  encoding: ContentEncoding;
  /** `Content-Type: application/octet-stream`: float32 values, envelope in headers. */
  binary: boolean;
}

/** Decodes frame bodies for one layout; reuses its scratch state, so one per thread. */
export interface FrameDecoder {
  /** Fills `into` (length = layout.size). Returns the JSON envelope, or `undefined` for binary. */
  decode(body: Uint8Array, job: DecodeJob, into: Float32Array): ScannedFrame | undefined;
}

/**
 * Creates a decoder: inflate (capped at `maxDecompressedBytes`), then the JSON scanner or the
 * binary copy. Throws HttpError 400/413/422.
 */
export function createFrameDecoder(
  layout: FeatureLayout,
  maxDecompressedBytes: number,
): FrameDecoder {
  const scanner = new JsonFrameScanner(layout);
  const rawBinaryLength = layout.size * 4;
  return {
    decode(body, job, into) {
      const bytes = inflateBody(
        body,
        job.encoding,
        maxDecompressedBytes,
        job.binary ? rawBinaryLength : -1,
      );
      try {
        if (job.binary) {
          decodeBinaryFrame(bytes, layout, into);
          return undefined;
        }
        return scanner.scan(bytes, into);
      } finally {
        if (bytes !== body) reclaim(bytes.byteLength);
      }
    },
  };
}
