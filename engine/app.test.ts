import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
import * as v from "valibot";
import { errorBodySchema } from "../contracts/error.ts";
import { engineReadySchema } from "../contracts/health.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { gzip, jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";

let model: ModelFixture;
let sink: AlertSink;
let engine: TestEngine;

before(async () => {
  model = await trainFixtureModel({ features: 1000 });
  sink = await startAlertSink();
  engine = await startTestEngine(model, sink, { QUEUE_MAX_SIZE: "4" });
});
after(async () => {
  await engine?.stop();
  await sink?.close();
  await model?.remove();
});

let step = 0;
const frame = (extra: { timestamp?: string | number; stream_id?: string } = {}) =>
  jsonFrame(model.featureNames, model.normalFrame(step++), extra);

async function expectError(response: Response, status: number, code: string) {
  const body = await response.json();
  assert.equal(response.status, status, JSON.stringify(body));
  assert.equal(v.parse(errorBodySchema, body).error, code);
  return response;
}

test("engine app answers liveness without touching the model", async () => {
  const response = await engine.engine.app.request("/health/live");
  assert.equal(response.status, 200);
  assert.equal((await response.json()).status, "ok");
});

test("engine app reports readiness with the provider and the model", async () => {
  const response = await engine.engine.app.request("/health/ready");
  assert.equal(response.status, 200);
  const body = v.parse(engineReadySchema, await response.json());
  assert.equal(body.execution_provider, "cpu");
  assert.equal(body.gpu.available, false);
  assert.deepEqual(body.model?.n_features, 1000);
  assert.equal(body.model?.name, model.name);
});

test("engine app accepts a frame in every encoding with 202", async () => {
  const bodies: [string, BodyInit, Record<string, string>][] = [
    ["plain JSON", frame(), { "content-type": "application/json" }],
    ["gzip with Content-Encoding", gzip(frame()), { "content-encoding": "gzip" }],
    [
      "gzip as the upstream sends it",
      gzip(frame()),
      { "content-type": "application/x-www-form-urlencoded" },
    ],
    ["zlib deflate", new Uint8Array(deflateSync(frame())), { "content-encoding": "deflate" }],
    [
      "binary float32",
      new Uint8Array(model.normalFrame(step++).buffer as ArrayBuffer),
      { "content-type": "application/octet-stream", "x-stream-id": "binary" },
    ],
    [
      "gzip binary float32",
      new Uint8Array(gzipSync(model.normalFrame(step++))),
      { "content-type": "application/octet-stream", "x-stream-id": "binary" },
    ],
  ];
  for (const [what, body, headers] of bodies) {
    const response = await engine.post(body, headers);
    assert.equal(response.status, 202, `${what}: ${await response.clone().text()}`);
    assert.equal((await response.json()).status, "accepted", what);
  }
});

test("engine app rejects bad bodies with their status and code, leaving no trace", async () => {
  const before = await engine.stats();
  await expectError(await engine.post("{not json"), 400, "invalid_json");
  await expectError(
    await engine.post(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]), { "content-encoding": "gzip" }),
    400,
    "invalid_compression",
  );
  await expectError(
    await engine.post(frame(), { "content-encoding": "br" }),
    415,
    "unsupported_encoding",
  );
  await expectError(await engine.post("x".repeat(600 * 1024)), 413, "payload_too_large");
  const missing = JSON.stringify({ data: { [model.featureNames[0]]: 1 } });
  await expectError(await engine.post(missing), 422, "frame_missing_features");
  await expectError(
    await engine.post(frame({ stream_id: "bad id!" })),
    422,
    "frame_invalid_stream_id",
  );
  const after = await engine.stats();
  assert.equal(after.frames.accepted, before.frames.accepted);
  assert.equal(after.frames.rejected, before.frames.rejected + 6);
  assert.equal(after.queue.depth, 0);
});

test("engine app accepts a repeated frame once and refuses an older one with 409", async () => {
  const stream_id = "ordering";
  const first = await engine.post(frame({ stream_id, timestamp: "2026-11-24T09:00:01Z" }));
  assert.equal((await first.json()).status, "accepted");
  const again = await engine.post(frame({ stream_id, timestamp: "2026-11-24T09:00:01Z" }));
  assert.equal(again.status, 202);
  assert.equal((await again.json()).status, "duplicate");
  await expectError(
    await engine.post(frame({ stream_id, timestamp: "2026-11-24T09:00:00Z" })),
    409,
    "frame_out_of_order",
  );
  const stats = await engine.stats();
  assert.equal(stats.frames.duplicate, 1);
});

test("engine app refuses a frame dated past FRAME_MAX_AHEAD_S, so it cannot block its stream", async () => {
  const stream_id = "clock-skew";
  const now = Date.now();
  const future = await engine.post(frame({ stream_id, timestamp: "9999-12-31T23:59:59Z" }));
  const refusal = await future.json();
  assert.equal(future.status, 422);
  assert.equal(refusal.error, "frame_invalid_timestamp");
  assert.match(refusal.message, /ahead of the engine's clock .*FRAME_MAX_AHEAD_S=300 s$/);
  // The stream was not touched: a frame of now, and one a minute ahead (skew), are accepted.
  const present = await engine.post(frame({ stream_id, timestamp: new Date(now).toISOString() }));
  assert.equal((await present.json()).status, "accepted");
  const skewed = await engine.post(frame({ stream_id, timestamp: now + 60_000 }));
  assert.equal((await skewed.json()).status, "accepted");
  await expectError(
    await engine.post(frame({ stream_id, timestamp: now + 3_600_000 })),
    422,
    "frame_invalid_timestamp",
  );
  const invalid = await engine.post(frame({ stream_id, timestamp: "2026-02-30T00:00:00Z" }));
  await expectError(invalid, 422, "frame_invalid_timestamp");
});

test("engine app answers 429 with Retry-After when every slab is taken, and accepts again after", async () => {
  // Four uploads that have not finished hold the four slabs of the queue.
  const encoder = new TextEncoder();
  const uploads = Array.from({ length: 4 }, (_, i) => {
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = controller;
      },
    });
    const text = frame({ stream_id: `slow-${i}` });
    push.enqueue(encoder.encode(text.slice(0, 10)));
    const response = engine.engine.app.request("/data-enqueue", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    const finish = () => {
      push.enqueue(encoder.encode(text.slice(10)));
      push.close();
    };
    return { response, finish };
  });
  // Wait until the four uploads hold their slabs (/stats counts reserved slabs as used).
  const deadline = Date.now() + 5000;
  while ((await engine.stats()).queue.depth < 4) {
    if (Date.now() > deadline) throw new Error("uploads did not reserve their slabs");
    await new Promise((r) => setTimeout(r, 2));
  }
  const full = await expectError(await engine.post(frame()), 429, "queue_full");
  assert.equal(full.headers.get("retry-after"), "1");
  for (const u of uploads) u.finish();
  for (const u of uploads) assert.equal((await u.response).status, 202);
  await waitForQueueEmpty();
  assert.equal((await engine.post(frame())).status, 202);
});

async function waitForQueueEmpty() {
  const deadline = Date.now() + 5000;
  while ((await engine.stats()).queue.depth > 0) {
    if (Date.now() > deadline) throw new Error("queue did not drain");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("engine app answers 404 as JSON for an unknown route, 405 with Allow for a wrong method", async () => {
  await expectError(await engine.engine.app.request("/nope"), 404, "not_found");
  const wrong = await engine.engine.app.request("/data-enqueue");
  await expectError(wrong, 405, "method_not_allowed");
  assert.equal(wrong.headers.get("allow"), "POST");
});

test("engine app accepts the upstream's exact request with the committed 25,000-feature model", async () => {
  const committed = {
    dir: new URL("../models", import.meta.url).pathname,
    name: "featurewise_ocsvm",
  };
  const big = await startTestEngine(committed, sink);
  try {
    const names = Array.from({ length: 25_000 }, (_, i) => `feature_${i}`);
    const values = Array.from({ length: 25_000 }, (_, i) => Math.round(Math.sin(i) * 100) / 100);
    // As the original main server sends it: gzip bytes, no Content-Encoding, a form content type.
    const response = await big.post(gzip(jsonFrame(names, values)), {
      "content-type": "application/x-www-form-urlencoded",
    });
    assert.equal(response.status, 202, await response.clone().text());
    assert.equal((await response.json()).status, "accepted");
  } finally {
    await big.stop();
  }
});
