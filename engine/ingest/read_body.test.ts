import assert from "node:assert/strict";
import * as net from "node:net";
import { test } from "node:test";
import * as zlib from "node:zlib";
import { HttpError } from "../../contracts/error.ts";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { waitFor } from "../_test/wait_for.ts";
import { serve } from "../serve.ts";
import { createFeatureLayout } from "./feature_layout.ts";
import { createIngestor } from "./ingestor.ts";
import type { NodeBodyStream } from "./read_body.ts";

const names = defaultFeatureNames(20);
const layout = createFeatureLayout(names);
const frame = zlib.gzipSync(
  new TextEncoder().encode(`{"data":{${names.map((n, i) => `"${n}":${i}`).join(",")}}}`),
);

/** Where the body is read from: the web Request, or Node's IncomingMessage (what the engine uses). */
type Source = "request" | "incoming";
const SOURCES: Source[] = "Deno" in globalThis ? ["request"] : ["request", "incoming"];

async function startServer(
  bodyTimeoutMs: number,
  source: Source,
  caught: unknown[] = [],
  maxDecompressedBytes = 64 * 1024,
) {
  const ingestor = createIngestor({
    layout,
    limits: { maxBodyBytes: 64 * 1024, maxDecompressedBytes, bodyTimeoutMs },
    workers: 1,
  });
  const server = await serve(
    async function handle(request, env) {
      const incoming =
        source === "incoming" ? (env as { incoming: NodeBodyStream }).incoming : undefined;
      try {
        await ingestor.ingest(request, new Float32Array(layout.size), incoming);
        return Response.json({ status: "accepted" }, { status: 202 });
      } catch (error) {
        caught.push(error);
        if (!(error instanceof HttpError)) throw error;
        return Response.json(error.body, { status: error.status });
      }
    },
    { hostname: "127.0.0.1", port: 0 },
  );
  return {
    port: server.port,
    async close() {
      await server.close();
      await ingestor.close();
    },
  };
}

/** Opens a raw connection, sends the head and `first` body bytes; resolves with the reply text. */
function rawPost(port: number, head: string, first: string) {
  const socket = net.connect(port, "127.0.0.1");
  socket.write(`POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\n${head}\r\n${first}`);
  let reply = "";
  socket.on("data", (chunk) => {
    reply += chunk.toString("latin1");
  });
  const ended = new Promise<string>((resolve) => {
    socket.on("close", () => resolve(reply));
    socket.on("error", () => {});
  });
  return { socket, ended, reply: () => reply };
}

for (const source of SOURCES) {
  test(`readBody (${source}) times out a dribbling client with 408 while another client's frame is accepted`, async () => {
    const server = await startServer(1500, source);
    const post = () =>
      fetch(`http://127.0.0.1:${server.port}/data-enqueue`, { method: "POST", body: frame });
    // The decode worker started before the slow client's clock runs: its start on a busy host is
    // no part of what is timed.
    assert.equal((await post()).status, 202);
    const slow = rawPost(
      server.port,
      "Content-Length: 1000\r\nContent-Type: application/json\r\n",
      "{",
    );
    const drip = setInterval(() => slow.socket.write(" "), 50);
    try {
      assert.equal((await post()).status, 202);
      assert.equal(slow.reply(), "", "the slow client must not have an answer yet");
      await waitFor(() => slow.reply().includes("\r\n\r\n"), "the slow client's answer", 10_000);
      assert.match(slow.reply(), /^HTTP\/1\.1 408/);
      assert.match(slow.reply(), /"error":"request_timeout"/);
    } finally {
      clearInterval(drip);
      slow.socket.destroy();
      await slow.ended;
      await server.close();
    }
  });

  test(`readBody (${source}) refuses a declared 2 MB body with 413 before it is sent`, async () => {
    const server = await startServer(5000, source);
    const big = rawPost(server.port, `Content-Length: ${2 * 1024 * 1024}\r\n`, "x".repeat(1024));
    try {
      await waitFor(() => big.reply().includes("\r\n\r\n"), "the 413 answer", 5000);
      assert.match(big.reply(), /^HTTP\/1\.1 413/);
      assert.match(big.reply(), /"error":"payload_too_large"/);
    } finally {
      big.socket.destroy();
      await big.ended;
      await server.close();
    }
  });

  test(`readBody (${source}) holds a plain body to maxDecompressedBytes and a compressed one to maxBodyBytes, refused once its first bytes show it`, async () => {
    const server = await startServer(5000, source, [], 256 * 1024);
    const url = `http://127.0.0.1:${server.port}/data-enqueue`;
    const text = new TextDecoder().decode(zlib.gunzipSync(frame));
    try {
      // 100 KB plain (padded with JSON whitespace): over maxBodyBytes, under maxDecompressedBytes.
      const plain = `${text}${" ".repeat(100 * 1024)}`;
      assert.equal((await fetch(url, { method: "POST", body: plain })).status, 202);
      const tooPlain = await fetch(url, { method: "POST", body: " ".repeat(300 * 1024) });
      assert.equal(tooPlain.status, 413);
      // Announced 100 KB of gzip with no Content-Encoding: refused on its first two bytes.
      const gzip = rawPost(server.port, `Content-Length: ${100 * 1024}\r\n`, "");
      try {
        gzip.socket.write(Uint8Array.of(0x1f, 0x8b));
        await waitFor(() => gzip.reply().includes("\r\n\r\n"), "the 413 answer", 5000);
        assert.match(gzip.reply(), /^HTTP\/1\.1 413/);
        assert.match(gzip.reply(), /compressed body exceeds 65536 bytes/);
      } finally {
        gzip.socket.destroy();
        await gzip.ended;
      }
    } finally {
      await server.close();
    }
  });

  test(`readBody (${source}) reads a chunked body of undeclared length`, async () => {
    const server = await startServer(5000, source);
    const chunked = rawPost(server.port, "Transfer-Encoding: chunked\r\n", "");
    try {
      const half = Math.floor(frame.length / 2);
      for (const part of [frame.subarray(0, half), frame.subarray(half)]) {
        chunked.socket.write(`${part.length.toString(16)}\r\n`);
        chunked.socket.write(part);
        chunked.socket.write("\r\n");
      }
      chunked.socket.write("0\r\n\r\n");
      await waitFor(() => chunked.reply().includes("\r\n\r\n"), "the answer", 5000);
      assert.match(chunked.reply(), /^HTTP\/1\.1 202/);
    } finally {
      chunked.socket.destroy();
      await chunked.ended;
      await server.close();
    }
  });
}

test("readBody (incoming) takes a client that hangs up mid-body for the client's doing: 400 body_incomplete, no engine error", async () => {
  const caught: unknown[] = [];
  const server = await startServer(5000, "incoming", caught);
  const gone = rawPost(
    server.port,
    "Content-Length: 1000\r\nContent-Type: application/json\r\n",
    '{"data"',
  );
  try {
    await new Promise((r) => setTimeout(r, 200));
    gone.socket.destroy();
    await gone.ended;
    await waitFor(() => caught.length === 1 || undefined, "the upload's end seen", 5000);
    assert.ok(caught[0] instanceof HttpError, String(caught[0]));
    assert.equal((caught[0] as HttpError).code, "body_incomplete");
    assert.equal((caught[0] as HttpError).status, 400);
  } finally {
    await server.close();
  }
});
