import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as v from "valibot";
import { alertSchema } from "../contracts/alert.ts";
import { verifyWebhook } from "../contracts/webhook_signature.ts";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";
import { waitFor } from "./_test/wait_for.ts";

let model: ModelFixture;
let sink: AlertSink;
const engines: TestEngine[] = [];

before(async () => {
  model = await trainFixtureModel({ features: 1000, name: "csv_1000" });
  sink = await startAlertSink();
});
after(async () => {
  for (const e of engines) await e.stop();
  await sink?.close();
  await model?.remove();
});

async function start(env: Record<string, string> = {}) {
  const engine = await startTestEngine(model, sink, env);
  engines.push(engine);
  return engine;
}

let step = 0;
async function send(engine: TestEngine, stream_id: string, spiked = 0) {
  const values = spiked ? model.spikedFrame(step++, spiked) : model.normalFrame(step++);
  const response = await engine.post(jsonFrame(model.featureNames, values, { stream_id }));
  assert.equal(response.status, 202, await response.clone().text());
}

test("engine scores a lone frame without waiting for a full batch", async () => {
  const engine = await start({ INFERENCE_BATCH_SIZE: "64" });
  for (let i = 0; i < 4; i++) await send(engine, "lone");
  assert.equal((await engine.stats()).frames.scored, 0, "no window before window_size frames");
  await send(engine, "lone");
  const stats = await waitFor(async () => {
    const s = await engine.stats();
    return s.frames.scored === 1 && s;
  }, "the first window to be scored");
  assert.deepEqual(stats.inference_ms.by_batch_size["1"] > 0, true);
  assert.equal(stats.latency_ms.count, 1);
});

test("engine scores a burst in batches", async () => {
  const engine = await start({ BATCH_MAX_DELAY_MS: "500", QUEUE_MAX_SIZE: "64" });
  const streams = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
  for (let k = 0; k < 4; k++) for (const s of streams) await send(engine, s);
  await Promise.all(streams.map((s) => send(engine, s)));
  const stats = await waitFor(async () => {
    const s = await engine.stats();
    return s.frames.scored === 8 && s;
  }, "eight windows to be scored");
  const sizes = Object.keys(stats.inference_ms.by_batch_size).map(Number);
  assert.ok(Math.max(...sizes) > 1, `batch sizes ${sizes}`);
  assert.ok(stats.batches < 8);
});

test("engine ends a batch after its delay though garbage is collected while it waits", async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const engine = await start({ BATCH_MAX_DELAY_MS: "300" });
  const streams = ["gc-0", "gc-1"];
  for (let k = 0; k < 5; k++) for (const s of streams) await send(engine, s);
  // The batch waits 300 ms for a third window that never comes; collections run meanwhile.
  const collecting = setInterval(gc, 5);
  try {
    await waitFor(
      async () => (await engine.stats()).frames.scored === 2,
      "two windows to be scored",
    );
  } finally {
    clearInterval(collecting);
  }
});

test("engine sends a signed, traced alert that passes the contract for a spiked window", async () => {
  const secret = "engine-test-signing-secret";
  const engine = await start({ ALERT_SIGNING_SECRET: secret, ALERT_MODE: "frame" });
  const before = sink.requests.length;
  for (let i = 0; i < 4; i++) await send(engine, "spike");
  await send(engine, "spike", 3);
  await waitFor(() => sink.requests.length > before, "an alert");
  const request = sink.requests[before];
  const alert = v.parse(alertSchema, JSON.parse(request.body));
  assert.equal(alert.stream_id, "spike");
  // The spiked sensors rank first (the model's cross-sensor residual may flag others too).
  assert.ok(alert.num_anomalous_features >= 3);
  assert.deepEqual(
    alert.anomalous_features
      .slice(0, 3)
      .map((f) => f.feature)
      .sort(),
    model.featureNames.slice(0, 3).sort(),
  );
  const severities = alert.anomalous_features.map((f) => f.severity);
  assert.deepEqual(
    severities,
    [...severities].sort((a, b) => b - a),
  );
  assert.equal(request.headers["webhook-id"], alert.alert_id);
  await verifyWebhook({ secret, headers: new Headers(request.headers), body: request.body });
});

test("engine retries alerts against a failing sink until it succeeds, once per alert", async () => {
  const engine = await start({ ALERT_MODE: "frame" });
  sink.script = [500, 503, 502];
  for (let i = 0; i < 4; i++) await send(engine, "retry");
  await send(engine, "retry", 2);
  const stats = await waitFor(async () => {
    const s = await engine.stats();
    return s.alerts.delivered === 1 && s;
  }, "the alert to be delivered");
  assert.equal(stats.alerts.outbox, 0);
  assert.equal(sink.script.length, 0);
});

test("engine does not retry an alert the backend rejects with 400 and keeps it", async () => {
  const engine = await start({ ALERT_MODE: "frame" });
  const before = sink.requests.length;
  sink.script = [400];
  for (let i = 0; i < 4; i++) await send(engine, "reject");
  await send(engine, "reject", 2);
  await waitFor(async () => (await engine.stats()).alerts.generated === 1, "the alert");
  // Once rejected, the dispatcher schedules nothing more for it: the count is final.
  await waitFor(() => engine.engine.state.pipeline?.alerts.counts.rejected === 1, "the rejection");
  assert.equal(sink.requests.length, before + 1);
  assert.equal((await engine.stats()).alerts.outbox, 1);
});

test("engine refuses frames with 503 outbox_full at the outbox bound, dropping nothing", async () => {
  const lines: { level: string; msg: string }[] = [];
  const engine = await startTestEngine(
    model,
    sink,
    { OUTBOX_MAX_ALERTS: "1", ALERT_MODE: "frame", LOG_LEVEL: "info" },
    { write: (line) => void lines.push(JSON.parse(line)) },
  );
  engines.push(engine);
  await sink.down();
  try {
    for (let i = 0; i < 4; i++) await send(engine, "bound");
    await send(engine, "bound", 2);
    await waitFor(async () => (await engine.stats()).alerts.outbox === 1, "the kept alert");
    for (let i = 0; i < 3; i++) {
      const response = await engine.post(jsonFrame(model.featureNames, model.normalFrame(step++)));
      assert.equal(response.status, 503);
      assert.equal((await response.json()).error, "outbox_full");
      assert.equal(response.headers.get("retry-after"), "5");
    }
  } finally {
    await sink.up();
  }
  await waitFor(async () => (await engine.stats()).alerts.outbox === 0, "the outbox to drain");
  await send(engine, "bound");
  // One line when refusing starts and one when it stops, not one per refused frame.
  assert.deepEqual(
    lines.filter((l) => /alert outbox/.test(l.msg)).map((l) => l.level),
    ["warn", "info"],
  );
});

test("engine drains on shutdown: readiness 503, new frames 503, accepted frames scored", async () => {
  const engine = await startTestEngine(model, sink);
  for (let i = 0; i < 5; i++) await send(engine, "drain");
  const stopping = engine.engine.shutdown(5000);
  const ready = await engine.engine.app.request("/health/ready");
  assert.equal(ready.status, 503);
  assert.equal((await ready.json()).status, "draining");
  const refused = await engine.post(jsonFrame(model.featureNames, model.normalFrame(step++)));
  assert.equal(refused.status, 503);
  assert.equal((await refused.json()).error, "shutting_down");
  await stopping;
  assert.equal((await engine.stats()).frames.scored, 1);
  await engine.stop();
});

test("engine reports 503 model_not_ready before the model is loaded", async () => {
  const engine = await startTestEngine(model, sink, {}, { start: false });
  const response = await engine.post(jsonFrame(model.featureNames, model.normalFrame(0)));
  assert.equal(response.status, 503);
  assert.equal((await response.json()).error, "model_not_ready");
  assert.equal((await engine.engine.app.request("/health/ready")).status, 503);
  await engine.stop();
});

test("engine requires the bearer token when INGEST_TOKEN is set", async () => {
  const token = "an-ingest-token-for-tests";
  const engine = await start({ INGEST_TOKEN: token });
  const body = () => jsonFrame(model.featureNames, model.normalFrame(step++));
  const anonymous = await engine.post(body());
  assert.equal(anonymous.status, 401);
  assert.equal((await anonymous.json()).error, "unauthorized");
  assert.equal((await engine.post(body(), { authorization: `Bearer ${token}x` })).status, 401);
  assert.equal((await engine.post(body(), { authorization: `Bearer ${token}` })).status, 202);
});

test("engine refuses a new stream with 503 too_many_streams while MAX_STREAMS others are active, and takes it once one falls silent", async () => {
  // The engine's clock is the test's: silence is a step of it, not a wait.
  let now = Date.now();
  const engine = await startTestEngine(
    model,
    sink,
    { MAX_STREAMS: "2", INCIDENT_STALE_MS: "1000" },
    { clock: { now: () => now } },
  );
  engines.push(engine);
  const post = (stream_id: string) =>
    engine.post(jsonFrame(model.featureNames, model.normalFrame(step++), { stream_id }));
  assert.equal((await post("a")).status, 202);
  assert.equal((await post("b")).status, 202);
  const refused = await post("c");
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get("retry-after"), "60");
  const body = await refused.json();
  assert.equal(body.error, "too_many_streams");
  assert.match(body.message, /MAX_STREAMS/);
  assert.equal((await post("a")).status, 202, "the streams holding a place go on");
  // "b" silent for INCIDENT_STALE_MS: "c" takes its place.
  now += 1000;
  assert.equal((await post("c")).status, 202);
});

test("engine with no decisions copy and the backend down stays ready, shows the copy stale in /stats and readiness, and warns once that history records without silences", async () => {
  // A port nothing listens on: every pull is refused.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const lines: { level: string; msg: string; [field: string]: unknown }[] = [];
  const engine = await startTestEngine(
    model,
    sink,
    { DECISIONS_URL: `http://127.0.0.1:${port}`, DECISIONS_POLL_S: "1", LOG_LEVEL: "info" },
    { write: (line) => void lines.push(JSON.parse(line)) },
  );
  engines.push(engine);
  for (let i = 0; i < 7; i++) await send(engine, "no-silences");
  await waitFor(async () => (await engine.stats()).frames.scored === 3, "three windows scored");
  const { decisions } = await waitFor(async () => {
    const stats = await engine.stats();
    const d = stats.decisions;
    return d?.silences.last === "failed" && d.verdicts.last === "failed" ? stats : undefined;
  }, "both pulls refused");
  assert.equal(decisions.stale, true);
  assert.match(decisions.why, /silences: no copy held/);
  for (const resource of ["silences", "verdicts"]) {
    const r = decisions[resource];
    assert.equal(r.held, null, `${resource}: no copy`);
    assert.equal(r.fetched_at, null);
    assert.equal(r.age_s, null);
    assert.equal(r.last, "failed");
    assert.match(r.last_error, new RegExp(`127\\.0\\.0\\.1:${port}`));
  }
  const ready = await engine.engine.app.request("/health/ready");
  assert.equal(ready.status, 200, "scoring never waits on the backend");
  const body = await ready.json();
  assert.equal(body.status, "ready");
  assert.equal(body.decisions.stale, true);
  assert.match(body.decisions.why, /no copy held/);
  const warned = lines.filter((l) =>
    l.msg.startsWith("training history is recorded with no silences copy"),
  );
  assert.equal(warned.length, 1, "said once, not per batch");
  assert.equal(warned[0].level, "warn");
});
