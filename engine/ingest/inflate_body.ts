// Undoes the body's compression (gzip, zlib/deflate or none) with the decompressed-size cap enforced.
import * as zlib from "node:zlib";
import { HttpError } from "../../contracts/error.ts";
import { clipInput } from "./_clip_input.ts";

/** What `Content-Encoding` announced. `identity` also stands for "absent". */
export type ContentEncoding = "gzip" | "deflate" | "identity";

/**
 * Parses `Content-Encoding`. One coding of gzip, x-gzip, deflate or identity; anything else
 * (br, zstd, a chain of codings) is 415 `unsupported_encoding`.
 */
export function parseContentEncoding(header: string | null): ContentEncoding {
  const value = (header ?? "").trim().toLowerCase();
  if (value === "" || value === "identity") return "identity";
  if (value === "gzip" || value === "x-gzip") return "gzip";
  if (value === "deflate") return "deflate";
  throw new HttpError(
    415,
    "unsupported_encoding",
    `Content-Encoding ${JSON.stringify(clipInput(header ?? ""))} is not supported (gzip, deflate or identity)`,
  );
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
/** A zlib header: deflate method, checksum ok. */
const isZlib = (b: Uint8Array) =>
  b.length >= 2 && (b[0] & 0x0f) === 8 && ((b[0] << 8) | b[1]) % 31 === 0;

/**
 * Whether a body sent without `Content-Encoding` starts like one `inflateBody` inflates: the
 * gzip magic or a 32 KiB-window zlib header (`b` holds at least its first two bytes).
 */
export const looksCompressed = (b: Uint8Array): boolean =>
  isGzip(b) || (b[0] === 0x78 && isZlib(b));

/**
 * Returns the decoded body. The coding comes from `Content-Encoding` and the leading bytes: the
 * upstream client posts gzip with no `Content-Encoding`, so an unannounced body starting with the
 * gzip magic (`1f 8b`) or a 32 KiB-window zlib header (`78 ..`) is inflated; neither can start a
 * JSON text. `rawLength` (binary frames) is the exact length of an uncompressed body: a body of
 * that length is never sniffed, as float32 data may start with any bytes.
 *
 * Inflating stops at `maxBytes` (413 `decompressed_too_large`); corrupt or truncated data and
 * bytes after the compressed stream are 400 `invalid_compression`.
 */
export function inflateBody(
  body: Uint8Array,
  encoding: ContentEncoding,
  maxBytes: number,
  rawLength = -1,
): Uint8Array {
  let coding: "gzip" | "zlib" | "raw" | "identity" = "identity";
  if (encoding === "gzip") {
    if (!isGzip(body)) throw corrupt("Content-Encoding is gzip but the body is not gzip");
    coding = "gzip";
  } else if (encoding === "deflate") coding = isZlib(body) ? "zlib" : "raw";
  else if (body.length !== rawLength && looksCompressed(body)) {
    coding = isGzip(body) ? "gzip" : "zlib";
  }
  if (coding === "identity") {
    if (body.length > maxBytes) throw tooLarge(maxBytes);
    return body;
  }
  // node:zlib (also in Deno) inflates twice as fast as pako here; see README.md.
  const options = {
    maxOutputLength: maxBytes,
    chunkSize: outputChunkSize(body, coding, maxBytes),
    info: true,
  } as zlib.ZlibOptions;
  let result: { buffer: Uint8Array; engine: { bytesWritten: number } };
  try {
    const run =
      coding === "gzip"
        ? zlib.gunzipSync
        : coding === "zlib"
          ? zlib.inflateSync
          : zlib.inflateRawSync;
    result = run(body, options) as unknown as typeof result;
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge(maxBytes);
    throw corrupt(`${coding} data is corrupt or truncated: ${(error as Error).message}`);
  }
  // zlib stops at the end of the stream (gzip: of the last member) and ignores what follows.
  if (result.engine.bytesWritten !== body.length) {
    throw corrupt(`${body.length - result.engine.bytesWritten} bytes follow the ${coding} stream`);
  }
  return result.buffer;
}

/**
 * Output chunk size for inflating `body`. node:zlib fills chunks of this size and concatenates
 * them; sized to the whole output, a 25,000-feature frame inflates into one allocation instead
 * of ~55 16 KiB chunks plus an 870 KB copy. gzip states the output size (mod 2^32) in its last
 * four bytes; it is only a hint, bounded by `maxBytes` and deflate's maximum ratio (1032:1), so a
 * lying trailer cannot make a small body allocate much. zlib and raw deflate guess 4x the input.
 */
function outputChunkSize(body: Uint8Array, coding: "gzip" | "zlib" | "raw", maxBytes: number) {
  const n = body.length;
  const hint =
    coding === "gzip" && n >= 18
      ? (body[n - 4] | (body[n - 3] << 8) | (body[n - 2] << 16) | (body[n - 1] << 24)) >>> 0
      : 4 * n;
  return Math.max(16 * 1024, Math.min(hint + 64, maxBytes + 64, 1032 * n + 64));
}

function corrupt(message: string): HttpError {
  return new HttpError(400, "invalid_compression", message);
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    "decompressed_too_large",
    `decompressed body exceeds ${maxBytes} bytes`,
  );
}
