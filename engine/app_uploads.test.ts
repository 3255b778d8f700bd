import assert from "node:assert/strict";
import * as net from "node:net";
import { before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { jsonFrame } from "./_test/engine_harness.ts";
import { trainedRegistry } from "./_test/registry_engine.ts";
import { waitFor } from "./_test/wait_for.ts";

/**
 * Opens a connection of its own and sends a POST's head and `first` bytes of its body: an upload
 * in flight until `close`. `answered` gives the engine's answer once its head is in.
 */
function heldUpload(port: number, head: string, first: string | Uint8Array) {
  const socket = net.connect(port, "127.0.0.1");
  socket.write(`POST /data-enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\n${head}\r\n`);
  socket.write(first);
  let reply = "";
  socket.on("data", (chunk) => {
    reply += chunk.toString("latin1");
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  return {
    reply: () => reply,
    answered: () => (reply.includes("\r\n\r\n") ? reply : undefined),
    async close() {
      socket.destroy();
      await closed;
    },
  };
}

// Two models (12 and 9 sensors): uploads in flight are counted across both lanes, and a body's
// cap follows its coding, under Node's HTTP server as in production.
describe("an engine serving two models reads its uploads", () => {
  const reg = trainedRegistry([
    { features: 12, name: "boiler" },
    { features: 9, name: "packaging" },
  ]);
  let url: (path: string) => string;
  let port: number;
  // biome-ignore lint/suspicious/noExplicitAny: the /stats JSON as tests read it
  const stats = async (): Promise<any> => (await fetch(url("/stats"))).json();

  before(async () => {
    ({ url, port } = await reg.start({
      MODEL_ROUTES: "line-b-*=packaging",
      QUEUE_MAX_SIZE: "4",
      MAX_BODY_BYTES: "1024",
      BODY_TIMEOUT_MS: "60000",
    }));
  });

  test("engine app holds at most QUEUE_MAX_SIZE uploads in flight across every model's lane, and answers the next 429 too_many_uploads before its body is read", async () => {
    // Each announces a large plain body and sends one byte of it.
    const head = `Content-Length: ${3 * 1024 * 1024}\r\nContent-Type: application/json\r\n`;
    const held = Array.from({ length: 4 }, () => heldUpload(port, head, "{"));
    try {
      await waitFor(async () => (await stats()).uploads?.in_flight === 4, "four uploads in flight");
      const next = heldUpload(port, head, "{");
      try {
        const answer = await waitFor(next.answered, "the fifth upload's answer", 10_000);
        assert.match(answer, /^HTTP\/1\.1 429/);
        assert.match(answer, /\r\nretry-after: 1\r\n/i);
        assert.match(answer, /"error":"too_many_uploads"/);
      } finally {
        await next.close();
      }
      const now = await stats();
      assert.deepEqual(now.uploads, { in_flight: 4, limit: 4 });
      assert.equal(now.queue.depth, 0, "uploads in flight hold no queue slab");
      assert.ok(
        held.every((h) => !h.answered()),
        "the held uploads are still being read",
      );
    } finally {
      await Promise.all(held.map((h) => h.close()));
    }
    await waitFor(async () => (await stats()).uploads.in_flight === 0, "the uploads ended");
    const line = reg.models[1];
    const frame = jsonFrame(line.featureNames, line.normalFrame(0), { stream_id: "line-b-1" });
    const accepted = await fetch(url("/data-enqueue"), { method: "POST", body: frame });
    assert.equal(accepted.status, 202, await accepted.text());
  });

  test("engine app takes a plain body over MAX_BODY_BYTES and refuses a compressed one over it, announced or not", async () => {
    const boiler = reg.models[0];
    // Padded past MAX_BODY_BYTES (1 KiB) with JSON whitespace.
    const plain = `${jsonFrame(boiler.featureNames, boiler.normalFrame(1), { stream_id: "boiler-1" })}${" ".repeat(4096)}`;
    const post = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
      fetch(url("/data-enqueue"), { method: "POST", body: body as BodyInit, headers });
    const ok = await post(plain, { "content-type": "application/json" });
    assert.equal(ok.status, 202, await ok.text());
    // Stored blocks (level 0): as long as the text, over MAX_BODY_BYTES, announced or not.
    const stored = new Uint8Array(gzipSync(plain, { level: 0 }));
    for (const headers of [{ "content-encoding": "gzip" }, {}] as Record<string, string>[]) {
      const refused = await post(stored, headers);
      const body = await refused.json();
      assert.equal(refused.status, 413, JSON.stringify(body));
      assert.equal(body.error, "payload_too_large");
      assert.match(body.message, /compressed body exceeds 1024 bytes/);
    }
    // Compressed below the cap, it is accepted.
    const small = await post(new Uint8Array(gzipSync(plain)), { "content-encoding": "gzip" });
    assert.equal(small.status, 202, await small.text());
  });
});
