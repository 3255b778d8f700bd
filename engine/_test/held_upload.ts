// A frame upload held open mid-body: how tests put a request in flight across a switch or a stop.
import { request } from "node:http";

export interface HeldUpload {
  /** Resolves once the first bytes are written. */
  sent: Promise<void>;
  /** The engine's answer (once `finish` has sent the rest, or the engine gave up on it). */
  answer: Promise<{ status: number; body: string }>;
  /** Sends the rest of the body. */
  finish(): void;
}

/**
 * POSTs `body` to `/data-enqueue` on 127.0.0.1:`port` over a connection of its own, sending its
 * first `firstBytes` bytes now and the rest when `finish` is called. `headers` go with it
 * (`content-length` is set).
 *
 * @example
 * const upload = heldUpload(port, text, { firstBytes: 10 });
 * await upload.sent; // ...the switch...
 * upload.finish();
 * assert.equal((await upload.answer).status, 202);
 */
export function heldUpload(
  port: number,
  body: string | Uint8Array,
  options: { firstBytes: number; headers?: Record<string, string> },
): HeldUpload {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  let finish = () => {};
  let sent: Promise<void> = Promise.resolve();
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/data-enqueue",
        method: "POST",
        agent: false,
        headers: { ...options.headers, "content-length": bytes.byteLength },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    sent = new Promise((written) =>
      req.write(bytes.subarray(0, options.firstBytes), () => written()),
    );
    finish = () => req.end(bytes.subarray(options.firstBytes));
  });
  return { answer, sent, finish: () => finish() };
}
