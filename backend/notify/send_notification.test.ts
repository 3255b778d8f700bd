// One delivery attempt: what a failure stores never holds the webhook's URL (a Slack webhook's path is its secret), nor costs more than a little of the answer.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { startReceiver } from "./_test_receiver.ts";
import { sendNotification } from "./send_notification.ts";

test("a failed attempt's error names no URL, password or path", async () => {
  // Real fetch: it refuses a URL with credentials, quoting the URL in its message.
  const secretPath = "/services/T000/B000/XXXXsecretXXXX";
  const result = await sendNotification({
    fetch: globalThis.fetch,
    url: `http://hook:s3cr3t-pass@127.0.0.1:9${secretPath}`,
    body: "{}",
    messageId: "msg_1",
    timeoutMs: 2000,
    now: Date.now(),
  });
  assert.equal(result.outcome, "retry");
  const error = (result as { error: string }).error;
  assert.match(error, /credentials: <webhook url>/);
  for (const secret of ["s3cr3t-pass", "XXXXsecretXXXX", "127.0.0.1"]) {
    assert.ok(!error.includes(secret), `${secret} in ${error}`);
  }
});

test("a refusing receiver's answer is kept without the webhook's URL, path or query", async () => {
  const path = "/services/T000/B000/XXXXsecretXXXX";
  const query = "?token=YYYYqueryYYYY";
  // A real receiver whose 404 page quotes what it was asked for, in each form.
  const server = createServer((req, res) => {
    req.resume();
    const url = `http://${req.headers.host}${req.url}`;
    res.writeHead(404, { "content-type": "text/html" });
    res.end(`<p>No route for ${req.url}</p><p>${url}</p><p>${path}</p><p>${query}</p>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const result = await sendNotification({
      fetch: globalThis.fetch,
      url: `http://127.0.0.1:${port}${path}${query}`,
      body: "{}",
      messageId: "msg_1",
      timeoutMs: 10_000,
      now: Date.now(),
    });
    assert.equal(result.outcome, "dead");
    const error = (result as { error: string }).error;
    assert.match(error, /^HTTP 404: <p>No route for <webhook url><\/p><p><webhook url><\/p>/);
    for (const secret of ["XXXXsecretXXXX", "YYYYqueryYYYY"]) {
      assert.ok(!error.includes(secret), `${secret} in ${error}`);
    }
  } finally {
    server.close();
  }
});

test("a refusing receiver's long answer is read only in part, the rest cancelled", async () => {
  // An 8 MiB error page, counted as the sender pulls it.
  const chunk = new Uint8Array(16 * 1024).fill(0x78);
  let pulled = 0;
  let cancelled = false;
  const page = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= 8 * 1024 * 1024) return controller.close();
      pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
    cancel() {
      cancelled = true;
    },
  });
  const result = await sendNotification({
    fetch: async () => new Response(page, { status: 500 }),
    url: "http://127.0.0.1:9/hook",
    body: "{}",
    messageId: "msg_1",
    timeoutMs: 10_000,
    now: Date.now(),
  });
  assert.equal(result.outcome, "retry");
  assert.equal((result as { error: string }).error, `HTTP 500: ${"x".repeat(200)}`);
  assert.ok(pulled <= 64 * 1024, `${pulled} bytes read`);
  assert.ok(cancelled, "the rest of the answer is cancelled");
});

test("a refusing receiver's answer is kept without the query's secrets however it spells them", async () => {
  // A real receiver answering as Express does (the query HTML-escaped), and quoting the path
  // percent-decoded, the token on its own and the whole query percent-encoded.
  const server = createServer((req, res) => {
    req.resume();
    const asked = `${req.method} ${req.url}`;
    const escaped = asked.replaceAll("&", "&amp;");
    const token = new URL(req.url ?? "/", "http://x").searchParams.get("token");
    res.writeHead(404, { "content-type": "text/html" });
    res.end(
      [
        `<pre>Cannot ${escaped}</pre>`,
        `<p>${decodeURIComponent(req.url ?? "")}</p>`,
        `<p>bad token ${token}</p>`,
        `<p>${encodeURIComponent(req.url ?? "")}</p>`,
      ].join(""),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const result = await sendNotification({
      fetch: globalThis.fetch,
      url: `http://127.0.0.1:${port}/leak/ops%20x?token=SUPERSECRET123&team=plant&key=K%2FEY%2Bvalue`,
      body: "{}",
      messageId: "msg_1",
      timeoutMs: 10_000,
      now: Date.now(),
    });
    assert.equal(result.outcome, "dead");
    const error = (result as { error: string }).error;
    // Whole: nothing of it was cut at the length kept.
    assert.equal(
      error,
      "HTTP 404: <pre>Cannot POST <webhook url></pre><p><webhook url></p>" +
        "<p>bad token <webhook url></p><p><webhook url></p>",
    );
    for (const secret of [
      "SUPERSECRET123",
      "K/EY+value",
      "K%2FEY%2Bvalue",
      "leak/ops",
      "team=plant",
    ]) {
      assert.ok(!error.includes(secret), `${secret} in ${error}`);
    }
  } finally {
    server.close();
  }
});

test("a refusing receiver's answer is kept without the webhook path's secret segments, quoted alone", async () => {
  // A real receiver that names the token it did not know, as Slack's 404 does: path segments
  // alone (never the whole path), as sent, percent-decoded and JSON-escaped as PHP writes `/`.
  const receiver = await startReceiver();
  receiver.answer = (r) => {
    const [, , team, , token, encoded] = r.path.split("/");
    const key = decodeURIComponent(encoded);
    const body = [
      `unknown webhook token ${token}`,
      `key ${key}`,
      `json ${JSON.stringify({ key }).replaceAll("/", "\\/")}`,
      `team ${team}`,
    ];
    return { status: 404, body: body.join("; ") };
  };
  try {
    const result = await sendNotification({
      fetch: globalThis.fetch,
      url: `${receiver.url}/services/T0001/B0002/seg9fK2xQvL7mZsecret/K3y%2Fwith%20space`,
      body: "{}",
      messageId: "msg_1",
      timeoutMs: 10_000,
      now: Date.now(),
    });
    assert.equal(result.outcome, "dead");
    // Whole, so no secret is left and nothing else garbled: a segment shorter than 8 characters
    // (a Slack team id) is no secret on its own.
    assert.equal(
      (result as { error: string }).error,
      'HTTP 404: unknown webhook token <webhook url>; key <webhook url>; json {"key":"<webhook url>"}; team T0001',
    );
  } finally {
    await receiver.close();
  }
});
