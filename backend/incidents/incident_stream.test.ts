// The incident event stream over HTTP: its events and keep-alives, and its end when who opened it may no longer read.
import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { keepSignInCheck } from "../auth/still_signed_in.ts";
import { createIncidentHub } from "./incident_hub.ts";
import { streamIncidentChanges } from "./incident_stream.ts";

/**
 * Serves, on a free port of this machine, an app streaming `hub`'s changes with a keep-alive
 * every `keepAliveMs`, behind a sign-in whose validity the test sets.
 */
async function streamingServer(keepAliveMs: number) {
  const hub = createIncidentHub();
  const signIn = { valid: true, checks: 0 };
  const app = new Hono();
  app.use(async function fakeSignIn(c, next) {
    keepSignInCheck(c, async function stillValid() {
      signIn.checks++;
      return signIn.valid;
    });
    await next();
  });
  app.get("/stream", (c) =>
    streamIncidentChanges(c, hub, async (id) => JSON.stringify({ id }), keepAliveMs),
  );
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stream`;
  /** Opens the stream; its text, read as it comes. */
  async function open(): Promise<ReadableStreamDefaultReader<string>> {
    const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    return res.body!.pipeThrough(new TextDecoderStream()).getReader();
  }
  /** Stops the server, streams still open included (a failed test leaves one). */
  const close = () => {
    (server as Server).closeAllConnections();
    server.close();
  };
  return { open, hub, signIn, close };
}

/** Reads `reader` until `done(text)` holds or it ends; `ended` is false when it was still open after 10 s. */
async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  done: (text: string) => boolean,
): Promise<{ text: string; ended: boolean }> {
  const deadline = AbortSignal.timeout(10_000);
  const stillOpen = new Promise<"open">((resolve) =>
    deadline.addEventListener("abort", () => resolve("open"), { once: true }),
  );
  let text = "";
  while (!done(text)) {
    const next = await Promise.race([reader.read(), stillOpen]);
    if (next === "open") return { text, ended: false };
    if (next.done) return { text, ended: true };
    text += next.value;
  }
  return { text, ended: false };
}

test("streamIncidentChanges sends changes and keep-alives while the sign-in holds, then ends at the next keep-alive", async (t) => {
  const { open, hub, signIn, close } = await streamingServer(20);
  t.after(close);
  const reader = await open();
  const ready = await readUntil(reader, (t) => t.includes("event: ready"));
  assert.match(ready.text, /event: ready/);
  hub.publish("a");
  const sent = await readUntil(reader, (t) => t.includes('"id":"a"'));
  assert.match(sent.text, /event: incident\ndata: \{"id":"a"\}/);
  const alive = await readUntil(reader, (t) => t.includes(": keep-alive"));
  assert.match(alive.text, /: keep-alive/);
  assert.ok(signIn.checks >= 2, "checked before the event and the keep-alive");

  // No change comes: the idle stream still notices at its next keep-alive.
  signIn.valid = false;
  const after = await readUntil(reader, () => false);
  assert.ok(after.ended, "the stream was closed");
  assert.equal(hub.size, 0, "and stopped listening to the hub");
  await reader.cancel();
});

test("streamIncidentChanges ends instead of sending a change once the sign-in no longer holds", async (t) => {
  const { open, hub, signIn, close } = await streamingServer(60_000);
  t.after(close);
  const reader = await open();
  await readUntil(reader, (t) => t.includes("event: ready"));
  signIn.valid = false;
  hub.publish("b");
  const after = await readUntil(reader, () => false);
  assert.ok(after.ended, "the stream was closed");
  assert.ok(!after.text.includes('"id":"b"'), "the change was not sent");
  await reader.cancel();
});
