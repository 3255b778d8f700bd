// With INGEST_TOKEN set, a client without the token never holds one of the engine's upload places.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "../_test/engine_harness.ts";
import { type HeldUpload, heldUpload } from "../_test/held_upload.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { type RunningServer, serve } from "../serve.ts";

const TOKEN = "intake-token-0123456789";

let model: ModelFixture;
let sink: AlertSink;
let engine: TestEngine;
let server: RunningServer;

before(async () => {
  model = await trainFixtureModel({ features: 6, name: "token_uploads" });
  sink = await startAlertSink();
  engine = await startTestEngine(model, sink, {
    INGEST_TOKEN: TOKEN,
    QUEUE_MAX_SIZE: "2",
    BODY_TIMEOUT_MS: "60000",
  });
  server = await serve(engine.engine.app.fetch, { hostname: "127.0.0.1", port: 0 });
});
after(async () => {
  await server?.close(AbortSignal.timeout(1000));
  await engine?.stop();
  await sink?.close();
  await model?.remove();
});

test("engine app answers an upload without INGEST_TOKEN 401 before it takes an upload place, so stalled ones hold none", async () => {
  const body = jsonFrame(model.featureNames, model.normalFrame(0), { stream_id: "line-t" });
  // More stalled uploads than there are places, each sending its head and a few bytes.
  const stalled: HeldUpload[] = Array.from({ length: 4 }, () =>
    heldUpload(server.port, body, {
      firstBytes: 8,
      headers: { "content-type": "application/json" },
    }),
  );
  for (const upload of stalled) {
    const answer = await upload.answer;
    assert.equal(answer.status, 401, answer.body);
    assert.match(answer.body, /"error":"unauthorized"/);
  }
  const stats = await (await fetch(`http://127.0.0.1:${server.port}/stats`)).json();
  assert.deepEqual(stats.uploads, { in_flight: 0, limit: 2 });
  const response = await fetch(`http://127.0.0.1:${server.port}/data-enqueue`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(response.status, 202, await response.text());
});
