import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
import * as v from "valibot";
import { errorBodySchema } from "../contracts/error.ts";
import { engineReadySchema } from "../contracts/health.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { gzip, jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";

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
  // Compressed, the body is held to MAX_BODY_BYTES (512 KiB); plain, to MAX_DECOMPRESSED_BYTES (4 MiB).
  const noise = new Uint8Array(gzipSync(randomBytes(600 * 1024), { level: 0 }));
  await expectError(await engine.post(noise), 413, "payload_too_large");
  await expectError(await engine.post("x".repeat(4 * 1024 * 1024 + 1)), 413, "payload_too_large");
  const missing = JSON.stringify({ data: { [model.featureNames[0]]: 1 } });
  await expectError(await engine.post(missing), 422, "frame_missing_features");
  await expectError(
    await engine.post(frame({ stream_id: "bad id!" })),
    422,
    "frame_invalid_stream_id",
  );
  const after = await engine.stats();
  assert.equal(after.frames.accepted, before.frames.accepted);
  assert.equal(after.frames.rejected, before.frames.rejected + 7);
  assert.equal(after.queue.depth, 0);
});

test("engine app accepts a repeated frame once and refuses an older one with 409", async () => {
  const stream_id = "ordering";
  const sent = frame({ stream_id, timestamp: "2026-11-24T09:00:01Z" });
  const first = await engine.post(sent);
  assert.equal((await first.json()).status, "accepted");
  // Sent again, as a client does when it saw no answer.
  const again = await engine.post(sent);
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

test("engine app answers a frame at an accepted frame's millisecond with other values 409 frame_timestamp_collision, with the same values a duplicate", async () => {
  // A client writing microseconds (Python's isoformat()): two frames within one millisecond.
  const second = new Date(Date.now() - 3000).toISOString().slice(0, 19);
  const values = (k: number) => model.normalFrame(1000 + k);
  const json = (k: number, micros: string) =>
    jsonFrame(model.featureNames, values(k), {
      stream_id: "micros",
      timestamp: `${second}.${micros}Z`,
    });
  const first = await engine.post(json(0, "110100"));
  assert.equal((await first.json()).status, "accepted");
  const collision = await engine.post(json(1, "110900"));
  const refusal = await collision.json();
  assert.equal(collision.status, 409, JSON.stringify(refusal));
  assert.equal(refusal.error, "frame_timestamp_collision");
  assert.match(refusal.message, /kept to the millisecond/);
  for (const micros of ["110100", "110900"]) {
    const again = await engine.post(json(0, micros));
    assert.equal((await again.json()).status, "duplicate", micros);
  }
  assert.equal((await (await engine.post(json(1, "111000"))).json()).status, "accepted");
  // A binary frame dated by X-Timestamp, the same way.
  const binary = (k: number, at: string) =>
    engine.post(new Uint8Array(values(k).buffer as ArrayBuffer), {
      "content-type": "application/octet-stream",
      "x-stream-id": "micros-binary",
      "x-timestamp": `${second}.${at}Z`,
    });
  assert.equal((await (await binary(0, "500001")).json()).status, "accepted");
  await expectError(await binary(1, "500999"), 409, "frame_timestamp_collision");
  assert.equal((await (await binary(0, "500999")).json()).status, "duplicate");
});

test("engine app keeps a stream's place for accepted frames only: a frame refused 409 keeps no silent stream alive", async () => {
  let now = Date.now();
  const bounded = await startTestEngine(
    model,
    sink,
    { MAX_STREAMS: "2", INCIDENT_STALE_MS: "1000" },
    { clock: { now: () => now } },
  );
  try {
    const T = now - 60_000;
    const send = (stream_id: string, timestamp: number) =>
      bounded.post(frame({ stream_id, timestamp }));
    const start = now;
    assert.equal((await send("a", T)).status, 202);
    now = start + 1500;
    assert.equal((await send("b", T)).status, 202);
    // "a" has sent nothing accepted for 2 s; its older frame is refused and changes nothing.
    now = start + 2000;
    await expectError(await send("a", T - 5), 409, "frame_out_of_order");
    // So "c" takes the place of "a", silent past INCIDENT_STALE_MS, not of "b".
    const c = await send("c", T);
    assert.equal(c.status, 202, await c.clone().text());
    await expectError(await send("a", T + 1), 503, "too_many_streams");
  } finally {
    await bounded.stop();
  }
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

/** A POST to the app whose body sends `first` characters of `text` now and the rest on `finish`. */
function heldPost(text: string, first = 10) {
  const encoder = new TextEncoder();
  let push!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      push = controller;
    },
  });
  push.enqueue(encoder.encode(text.slice(0, first)));
  const response = Promise.resolve(
    engine.engine.app.request("/data-enqueue", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit),
  );
  const finish = () => {
    push.enqueue(encoder.encode(text.slice(first)));
    push.close();
  };
  return { response, finish };
}

test("engine app holds QUEUE_MAX_SIZE uploads in flight apart from the queue, answers the next 429 too_many_uploads, and accepts again after", async () => {
  const uploads = Array.from({ length: 4 }, (_, i) => heldPost(frame({ stream_id: `slow-${i}` })));
  await waitFor(
    async () => (await engine.stats()).uploads?.in_flight === 4,
    "four uploads in flight",
    5000,
    2,
  );
  const stats = await engine.stats();
  assert.deepEqual(stats.uploads, { in_flight: 4, limit: 4 });
  assert.equal(stats.queue.depth, 0, "an upload in flight holds no queue slab");
  const refused = await expectError(await engine.post(frame()), 429, "too_many_uploads");
  assert.equal(refused.headers.get("retry-after"), "1");
  for (const u of uploads) u.finish();
  for (const u of uploads) assert.equal((await u.response).status, 202);
  await waitForQueueEmpty();
  assert.equal((await engine.stats()).uploads.in_flight, 0);
  assert.equal((await engine.post(frame())).status, 202);
});

test("engine app answers 429 queue_full before reading the body while the queue's slabs are taken", async () => {
  // Slabs taken as by committed frames the batcher has not scored yet.
  const queue = engine.engine.state.pipeline!.lanes[0].queue;
  const taken = Array.from({ length: queue.capacity }, () => queue.reserve());
  try {
    assert.ok(taken.every((slot) => slot >= 0));
    // Its body never ends: the answer comes without reading it.
    const upload = heldPost(frame());
    const full = await expectError(await upload.response, 429, "queue_full");
    assert.equal(full.headers.get("retry-after"), "1");
    assert.equal((await engine.stats()).uploads.in_flight, 0);
    upload.finish();
  } finally {
    for (const slot of taken) queue.release(slot);
  }
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

describe("engine app with the committed 25,000-feature model", () => {
  let big: TestEngine;
  const names = Array.from({ length: 25_000 }, (_, i) => `feature_${i}`);
  // Full doubles, as a client's JSON has them: ~850 KB of plain JSON.
  const values = Array.from({ length: 25_000 }, (_, i) => Math.sin(i));
  before(async () => {
    const committed = {
      dir: new URL("../models", import.meta.url).pathname,
      name: "featurewise_ocsvm",
    };
    big = await startTestEngine(committed, sink);
  });
  after(async () => {
    await big?.stop();
  });

  test("engine app accepts the upstream's exact request", async () => {
    // As the original main server sends it: gzip bytes, no Content-Encoding, a form content type.
    const response = await big.post(gzip(jsonFrame(names, values)), {
      "content-type": "application/x-www-form-urlencoded",
    });
    assert.equal(response.status, 202, await response.clone().text());
    assert.equal((await response.json()).status, "accepted");
  });

  test("engine app accepts a plain JSON frame larger than MAX_BODY_BYTES: it is held to MAX_DECOMPRESSED_BYTES", async () => {
    const text = jsonFrame(names, values, { stream_id: "plain" });
    assert.ok(text.length > 512 * 1024, `${text.length} bytes`);
    const response = await big.post(text, { "content-type": "application/json" });
    assert.equal(response.status, 202, await response.clone().text());
    assert.equal((await response.json()).status, "accepted");
  });
});
