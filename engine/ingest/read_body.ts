// Reads a request body with the size cap enforced while reading and a deadline for the whole body.
import { HttpError } from "../../contracts/error.ts";

export interface ReadBodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
}

/**
 * Reads `request`'s body into one owned buffer (transferable to a worker). A declared
 * `Content-Length` over the cap is refused before reading; an undeclared one as soon as the
 * running total passes it (413 `payload_too_large`), so an oversized body is never buffered.
 * The body must arrive within `bodyTimeoutMs` (408 `request_timeout`).
 */
export async function readBody(request: Request, limits: ReadBodyLimits): Promise<Uint8Array> {
  const { maxBodyBytes, bodyTimeoutMs } = limits;
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBodyBytes) throw tooLarge(maxBodyBytes);
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
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
  let buffer = new Uint8Array(declared >= 0 ? declared : 64 * 1024);
  let length = 0;
  try {
    for (;;) {
      const chunk = await Promise.race([reader.read(), expired]);
      if (chunk.done) break;
      const bytes = chunk.value;
      if (length + bytes.length > maxBodyBytes) throw tooLarge(maxBodyBytes);
      if (length + bytes.length > buffer.length) {
        const grown = new Uint8Array(
          Math.min(maxBodyBytes, Math.max(buffer.length * 2, length + bytes.length)),
        );
        grown.set(buffer.subarray(0, length));
        buffer = grown;
      }
      buffer.set(bytes, length);
      length += bytes.length;
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    deadline.removeEventListener("abort", onAbort);
  }
  return length === buffer.length ? buffer : buffer.slice(0, length);
}

function tooLarge(maxBodyBytes: number): HttpError {
  return new HttpError(413, "payload_too_large", `body exceeds ${maxBodyBytes} bytes`);
}
