// A line that goes dark without a stop: GET /stats lists it as silent, then not once it sends again.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type AlertSink, startAlertSink } from "./_test/alert_sink.ts";
import { jsonFrame, startTestEngine, type TestEngine } from "./_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "./_test/model_fixture.ts";

let model: ModelFixture;
let sink: AlertSink;
let engine: TestEngine;
/** The engine's clock, moved by the test. */
let now = Date.UTC(2026, 11, 7, 8);
const T0 = now;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "press" });
  sink = await startAlertSink();
  engine = await startTestEngine(
    model,
    sink,
    { INCIDENT_STALE_MS: "60000" },
    { clock: { now: () => now } },
  );
});
after(async () => {
  await engine?.stop();
  await sink?.close();
  await model?.remove();
});

async function send(streamId: string, n: number) {
  const res = await engine.post(
    jsonFrame(model.featureNames, model.normalFrame(n), {
      stream_id: streamId,
      timestamp: T0 + n * 1000,
    }),
  );
  assert.equal(res.status, 202);
}

test("a stream that sends nothing past INCIDENT_STALE_MS (and 10 of its intervals) is listed as silent, longest first, until it sends again", async () => {
  // Both send a frame a second for 10 s; line-a stops there, line-b goes on to 30 s.
  for (let n = 0; n <= 10; n++, now += 1000) {
    await send("line-a", n);
    await send("line-b", n);
  }
  for (let n = 11; n <= 30; n++, now += 1000) await send("line-b", n);
  const silent = async () => (await engine.stats()).silent as { stream_id: string }[];
  assert.deepEqual(await silent(), [], "20 s of quiet is no silence");
  now = T0 + 75_000;
  const listed = (await engine.stats()).silent;
  assert.deepEqual(listed, [
    { stream_id: "line-a", last_accepted_at: new Date(T0 + 10_000).toISOString() },
  ]);
  now = T0 + 100_000;
  assert.deepEqual(
    (await silent()).map((s) => s.stream_id),
    ["line-a", "line-b"],
    "longest silent first",
  );
  // line-a sends again (its stream time goes on where it left off).
  await send("line-a", 11);
  assert.deepEqual(
    (await silent()).map((s) => s.stream_id),
    ["line-b"],
  );
});

test("past 256 silent streams, the most recently silent are listed: a line that has just gone dark is not cut off by old ones", async () => {
  const start = now;
  for (let i = 0; i < 257; i++) await send(`old-${i}`, 0);
  now += 10 * 60_000;
  await send("line-new", 0);
  now += 2 * 60_000;
  const listed = (await engine.stats()).silent as { stream_id: string }[];
  assert.equal(listed.length, 256);
  assert.equal(listed.at(-1)?.stream_id, "line-new", "the most recent silence, listed last");
  assert.ok(now > start);
});
