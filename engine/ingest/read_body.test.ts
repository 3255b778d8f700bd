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

const names = defaultFeatureNames(20);
const layout = createFeatureLayout(names);
const frame = zlib.gzipSync(
  new TextEncoder().encode(`{"data":{${names.map((n, i) => `"${n}":${i}`).join(",")}}}`),
);

async function startServer(bodyTimeoutMs: number) {
  const ingestor = createIngestor({
    layout,
    limits: { maxBodyBytes: 64 * 1024, maxDecompressedBytes: 64 * 1024, bodyTimeoutMs },
    workers: 1,
  });
  const server = await serve(
    async function handle(request) {
      try {
        await ingestor.ingest(request, new Float32Array(layout.size));
        return Response.json({ status: "accepted" }, { status: 202 });
      } catch (error) {
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
  socket.write(`POST /data-enqueue HTTP/1.1\r\nHost: x\r\n${head}\r\n${first}`);
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

test("readBody times out a dribbling client with 408 while another client's frame is accepted", async () => {
  const server = await startServer(400);
  const slow = rawPost(
    server.port,
    "Content-Length: 1000\r\nContent-Type: application/json\r\n",
    "{",
  );
  const drip = setInterval(() => slow.socket.write(" "), 50);
  try {
    const fast = await fetch(`http://127.0.0.1:${server.port}/data-enqueue`, {
      method: "POST",
      body: frame,
    });
    assert.equal(fast.status, 202);
    assert.equal(slow.reply(), "", "the slow client must not have an answer yet");
    await waitFor(() => slow.reply().includes("\r\n\r\n"), "the slow client's answer", 5000);
    assert.match(slow.reply(), /^HTTP\/1\.1 408/);
    assert.match(slow.reply(), /"error":"request_timeout"/);
  } finally {
    clearInterval(drip);
    slow.socket.destroy();
    await slow.ended;
    await server.close();
  }
});

test("readBody refuses a declared 2 MB body with 413 before it is sent", async () => {
  const server = await startServer(5000);
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
