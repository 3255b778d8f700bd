// Reads a request body with the size cap enforced while reading and a deadline for the whole body.
import type { Readable } from "node:stream";
import { HttpError } from "../../contracts/error.ts";
import { reclaim } from "../_reclaim.ts";
import { type ContentEncoding, looksCompressed } from "./inflate_body.ts";

export interface ReadBodyLimits {
  /** Cap on a compressed body (`MAX_BODY_BYTES`). */
  maxBodyBytes: number;
  /** Cap on an uncompressed body, which is its own decompressed form (`MAX_DECOMPRESSED_BYTES`). */
  maxDecompressedBytes: number;
  bodyTimeoutMs: number;
}

export interface ReadBodyOptions {
  /** What `Content-Encoding` announced (default `identity`). */
  encoding?: ContentEncoding;
  /** A binary frame's uncompressed length: a body of exactly that length is never sniffed. */
  rawLength?: number;
  /** Buffer for a declared length of at most `maxBodyBytes`; must return exactly that many bytes. */
  allocate?: (bytes: number) => Uint8Array;
  /** Under Node, the server's `IncomingMessage`, read instead of the web `Request` body. */
  incoming?: NodeBodyStream;
}

/** Bytes a body of unknown or large size starts with; the buffer doubles as bytes arrive. */
const FIRST_BUFFER_BYTES = 64 * 1024;

/**
 * Reads `request`'s body into one owned buffer (transferable to a worker), with the size cap
 * enforced while reading and a deadline for the whole body (408 `request_timeout` after
 * `bodyTimeoutMs`).
 *
 * The cap depends on the body's coding, as `inflateBody` decides it: a compressed body (announced
 * by `Content-Encoding`, or unannounced and starting with the gzip or zlib magic) is held to
 * `maxBodyBytes`; an uncompressed one is its own decompressed form, held to
 * `maxDecompressedBytes` (a 25,000-feature JSON frame is ~870 KB plain). A declared
 * `Content-Length` over the cap is refused before reading, an undeclared one as soon as the
 * running total passes it, a compressed one as soon as its first bytes show it (413
 * `payload_too_large`), so an oversized body is never buffered.
 *
 * A declared length of at most `maxBodyBytes` is read into `allocate(length)` (the decode pool
 * recycles those buffers); a longer or undeclared one into a buffer that grows as bytes arrive, so
 * an upload holds about what it sent, not what it announced.
 *
 * Under Node, pass the server's `IncomingMessage` as `incoming`: its chunks are read directly,
 * and the web `Request` body (an undici Request and a web stream around the Node stream, built
 * on first access) is never created: measured, that is a third of the request thread's
 * allocation at 1,500 frames/s.
 */
export async function readBody(
  request: Request,
  limits: ReadBodyLimits,
  options: ReadBodyOptions = {},
): Promise<Uint8Array> {
  const { maxBodyBytes, maxDecompressedBytes, bodyTimeoutMs } = limits;
  const { encoding = "identity", rawLength = -1, incoming } = options;
  const allocate = options.allocate ?? ((bytes: number) => new Uint8Array(bytes));
  const header = Number(request.headers.get("content-length") ?? Number.NaN);
  const declared = header >= 0 ? header : -1;
  const announced = encoding !== "identity";
  // Until its first bytes show it compressed, an unannounced body may be plain.
  const cap = announced ? maxBodyBytes : Math.max(maxBodyBytes, maxDecompressedBytes);
  const compressedTooLarge = () =>
    new HttpError(413, "payload_too_large", `compressed body exceeds ${maxBodyBytes} bytes`);
  const tooLarge = () =>
    announced
      ? compressedTooLarge()
      : new HttpError(
          413,
          "payload_too_large",
          `body exceeds ${cap} bytes (uncompressed; compressed at most ${maxBodyBytes})`,
        );
  if (declared > cap) throw tooLarge();
  /**
   * Whether an unannounced body of `length` bytes so far (`total` in all, -1 while unknown) is
   * compressed and over `maxBodyBytes`. A body of a binary frame's exact raw length is plain
   * whatever its bytes: decided only once its length is known.
   */
  const compressedOver = (head: Uint8Array, length: number, total: number) => {
    const size = Math.max(length, total);
    if (announced || size <= maxBodyBytes || length < 2 || !looksCompressed(head)) return false;
    if (rawLength < 0) return true;
    return total >= 0 ? total !== rawLength : rawLength <= maxBodyBytes;
  };
  const reader = incoming ? nodeReader(incoming) : request.body?.getReader();
  if (!reader) return new Uint8Array(0);
  const deadline = AbortSignal.timeout(bodyTimeoutMs);
  let onAbort = () => {};
  const expired = new Promise<never>((_, reject) => {
    onAbort = function rejectLateBody() {
      reject(
        new HttpError(408, "request_timeout", `body did not arrive within ${bodyTimeoutMs} ms`),
      );
    };
    deadline.addEventListener("abort", onAbort, { once: true });
  });
  expired.catch(() => {});
  let buffer =
    declared >= 0 && declared <= maxBodyBytes
      ? allocate(declared)
      : new Uint8Array(Math.min(FIRST_BUFFER_BYTES, declared >= 0 ? declared : cap));
  let length = 0;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await Promise.race([reader.read(), expired]);
      } catch (error) {
        // Deno fails the read that would end the body (`BadResource`) when the client half-closed
        // its side (`shutdown(SHUT_WR)`) after the last byte: every declared byte is in, so the
        // body is whole.
        if (!(error instanceof HttpError) && declared >= 0 && length === declared) break;
        throw error;
      }
      if (chunk.done) break;
      const bytes = chunk.value;
      const want = length + bytes.length;
      if (want > cap) throw tooLarge();
      if (want > buffer.length) {
        // Grown to the declared length at most, so a body as long as it said needs no copy.
        const ceiling = declared >= want ? declared : cap;
        const grown = new Uint8Array(Math.min(ceiling, Math.max(buffer.length * 2, want)));
        grown.set(buffer.subarray(0, length));
        reclaim(buffer.byteLength);
        buffer = grown;
      }
      buffer.set(bytes, length);
      const had = length;
      length = want;
      // Checked when the first two bytes are in, and when the total passes `maxBodyBytes`.
      const check = had < 2 || (had <= maxBodyBytes && length > maxBodyBytes);
      if (check && compressedOver(buffer, length, declared)) throw compressedTooLarge();
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    // A web stream (Deno's) fails its read when the client goes mid-upload: the client's doing,
    // as on Node's reader below, not an engine error to log.
    if (!incoming && !(error instanceof HttpError)) throw incomplete();
    throw error;
  } finally {
    deadline.removeEventListener("abort", onAbort);
  }
  if (compressedOver(buffer, length, length)) throw compressedTooLarge();
  return length === buffer.length ? buffer : buffer.slice(0, length);
}

function incomplete(): HttpError {
  return new HttpError(
    400,
    "body_incomplete",
    "the client closed the connection before the body ended",
  );
}

/** The part of Node's `IncomingMessage` the reader needs. */
export type NodeBodyStream = Pick<Readable, "read" | "on" | "off" | "resume" | "readableEnded">;

/**
 * A `ReadableStreamDefaultReader`-like view of a Node request stream, reading in paused mode.
 * `cancel` discards the rest of the body without closing the connection, so the error answer
 * (408, 413) still reaches the client; the server closes the connection after it.
 */
function nodeReader(incoming: NodeBodyStream) {
  return {
    read: () =>
      new Promise<ReadableStreamReadResult<Uint8Array>>((resolve, reject) => {
        const cleanup = () => {
          incoming.off("readable", attempt);
          incoming.off("end", onEnd);
          incoming.off("error", onError);
          incoming.off("close", onClose);
        };
        function attempt() {
          const chunk = incoming.read() as Uint8Array | null;
          if (chunk !== null) {
            cleanup();
            resolve({ done: false, value: chunk });
          } else if (incoming.readableEnded) onEnd();
        }
        function onEnd() {
          cleanup();
          resolve({ done: true, value: undefined });
        }
        function onError(error: Error) {
          cleanup();
          // A client gone mid-upload is the client's doing, not an engine error to log.
          const gone =
            error.message === "aborted" || (error as { code?: string }).code === "ECONNRESET";
          reject(gone ? incomplete() : error);
        }
        function onClose() {
          if (incoming.readableEnded) return onEnd();
          cleanup();
          reject(incomplete());
        }
        incoming.on("readable", attempt);
        incoming.on("end", onEnd);
        incoming.on("error", onError);
        incoming.on("close", onClose);
        attempt();
      }),
    cancel: async () => {
      incoming.resume();
    },
  };
}
