// Test kit for arrival order: frames of one stream whose decodes end in the reverse of their arrival.
import * as net from "node:net";
import { waitFor } from "../_test/wait_for.ts";

/** JSON whitespace in a slow frame: a few kilobytes gzipped, tens of milliseconds to decode. */
export const SLOW_PADDING = 16 * 1024 * 1024;

/** One gzip JSON POST on a connection of its own, written whole at once; resolves with its answer. */
export function send(port: number, body: Uint8Array): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const head =
      "POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
      "Content-Type: application/json\r\nContent-Encoding: gzip\r\n" +
      `Content-Length: ${body.length}\r\n\r\n`;
    socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
    const chunks: Buffer[] = [];
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const reply = Buffer.concat(chunks).toString("utf8");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
      resolve({ status, text: reply.slice(reply.indexOf("\r\n\r\n") + 4) });
    });
  });
}

/**
 * Sends `rounds` pairs of frames of one stream: `frame(2r, SLOW_PADDING)`, whose body is small
 * but slow to decode, then, once `inFlight()` counts its upload (its body, written whole, is
 * in), `frame(2r + 1, 0)`, small and fast: with two decode workers the second's decode ends
 * first. Resolves with every answer in step order.
 */
export async function sendSlowThenFast(
  port: number,
  inFlight: () => Promise<number>,
  frame: (step: number, padding: number) => Uint8Array,
  rounds: number,
): Promise<{ status: number; text: string }[]> {
  const answers: { status: number; text: string }[] = [];
  for (let round = 0; round < rounds; round++) {
    const slowBody = frame(2 * round, SLOW_PADDING);
    const fastBody = frame(2 * round + 1, 0);
    let slowAnswered = false;
    const slow = send(port, slowBody).finally(() => {
      slowAnswered = true;
    });
    await waitFor(
      async () => slowAnswered || (await inFlight()) === 1,
      "the slow frame's upload to begin",
    );
    const fast = send(port, fastBody);
    answers.push(await slow, await fast);
  }
  return answers;
}
