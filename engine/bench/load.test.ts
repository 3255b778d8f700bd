import assert from "node:assert/strict";
import * as http from "node:http";
import { test } from "node:test";
import { closedLoop, createClient, openLoop, openLoops } from "./load.ts";

async function startCounter(statusFor: (n: number) => number) {
  let count = 0;
  let bytes = 0;
  const server = http.createServer((request, response) => {
    request.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
    });
    request.on("end", () => response.writeHead(statusFor(++count)).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    count: () => count,
    bytes: () => bytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test("openLoop sends rate x seconds requests and classifies the answers", async () => {
  const server = await startCounter((n) => (n % 4 === 0 ? 429 : n % 5 === 0 ? 500 : 202));
  const client = createClient(server.port);
  try {
    const out = await openLoop(client, [new Uint8Array(10)], {}, { rate: 100, seconds: 0.4 });
    assert.equal(out.sent, 40);
    assert.equal(server.count(), 40);
    assert.equal(server.bytes(), 400);
    assert.equal(out.busy, 10);
    assert.equal(out.accepted + out.busy + out.failed, 40);
    assert.ok(out.failed >= 6);
  } finally {
    client.close();
    await server.close();
  }
});

test("closedLoop keeps every connection busy and counts what the server saw", async () => {
  const server = await startCounter(() => 202);
  const client = createClient(server.port);
  try {
    const stream = { bodies: [new Uint8Array(3)], headers: {} };
    const out = await closedLoop(client, [stream, stream, stream, stream], { seconds: 0.3 });
    assert.ok(out.sent >= 4);
    assert.equal(out.accepted, out.sent);
    assert.equal(server.count(), out.sent);
  } finally {
    client.close();
    await server.close();
  }
});

test("openLoops gives each stream its share of the rate and sums the answers", async () => {
  const server = await startCounter((n) => (n % 10 === 0 ? 429 : 202));
  const client = createClient(server.port);
  try {
    const streams = [
      { bodies: [new Uint8Array(1)], headers: { "x-stream-id": "a" } },
      { bodies: [new Uint8Array(2)], headers: { "x-stream-id": "b" } },
    ];
    const out = await openLoops(client, streams, { rate: 100, seconds: 0.4 });
    assert.equal(out.sent, 40);
    assert.equal(server.count(), 40);
    // 20 one-byte and 20 two-byte bodies.
    assert.equal(server.bytes(), 60);
    assert.equal(out.busy, 4);
    assert.equal(out.accepted, 36);
  } finally {
    client.close();
    await server.close();
  }
});
