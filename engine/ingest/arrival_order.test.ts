import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { gzip, jsonFrame, startTestEngine, type TestEngine } from "../_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { waitFor } from "../_test/wait_for.ts";
import { type RunningServer, serve } from "../serve.ts";
import { send, sendSlowThenFast } from "./_arrivals_test_kit.ts";
import { ArrivalOrder } from "./arrival_order.ts";

describe("ArrivalOrder", () => {
  test("arrivalOrder makes a turn ready only once every earlier turn ended, though a later one ended first", async () => {
    const order = new ArrivalOrder();
    const seen: string[] = [];
    const first = order.take();
    const second = order.take();
    const third = order.take();
    void second.ready.then(() => seen.push("second"));
    void third.ready.then(() => seen.push("third"));
    await first.ready;
    third.end();
    second.end();
    second.end();
    // Ended out of order: neither waiting turn may go before the first ends.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, []);
    first.end();
    await third.ready;
    assert.deepEqual(seen, ["second", "third"]);
    await order.take().ready;
  });
});

// Real engine, real sockets, two decode workers: a frame whose body arrived first but decodes
// slowly (megabytes of JSON whitespace, gzipped to a few kilobytes) and the next frame of its
// stream, small, sent once the first is being read: the second's decode ends first.
describe("an engine decoding on two workers", () => {
  let model: ModelFixture;
  let sink: AlertSink;
  let engine: TestEngine;
  let server: RunningServer;
  // biome-ignore lint/suspicious/noExplicitAny: the /stats JSON as tests read it
  const stats = async (): Promise<any> =>
    (await fetch(`http://127.0.0.1:${server.port}/stats`)).json();

  before(async () => {
    model = await trainFixtureModel({ features: 6, name: "arrivals" });
    sink = await startAlertSink();
    engine = await startTestEngine(model, sink, {
      INGEST_WORKERS: "2",
      MAX_DECOMPRESSED_BYTES: String(64 * 1024 * 1024),
    });
    server = await serve(engine.engine.app.fetch, { hostname: "127.0.0.1", port: 0 });
  });
  after(async () => {
    await server?.close(AbortSignal.timeout(1000));
    await engine?.stop();
    await sink?.close();
    await model?.remove();
  });

  test("engine app admits a stream's frames in the order their bodies arrived, not the order their decodes ended", async () => {
    const base = Date.UTC(2026, 0, 1);
    const frame = (step: number, padding: number) =>
      gzip(
        `{${" ".repeat(padding)}${jsonFrame(model.featureNames, model.normalFrame(step), {
          stream_id: "line-1",
          timestamp: base + step * 1000,
        }).slice(1)}`,
      );
    // Both workers up and warm, on another stream.
    const warm = await Promise.all(
      [0, 1].map((i) =>
        send(
          server.port,
          gzip(jsonFrame(model.featureNames, model.normalFrame(i), { stream_id: "warm-up" })),
        ),
      ),
    );
    assert.deepEqual(
      warm.map((r) => r.status),
      [202, 202],
    );
    const rounds = 4;
    const answers = await sendSlowThenFast(
      server.port,
      async () => (await stats()).uploads.in_flight,
      frame,
      rounds,
    );
    assert.deepEqual(
      answers.map((a) => `${a.status} ${a.text}`),
      answers.map((_, step) =>
        expect202(new Date(base + step * 1000).toISOString(), answers[step].text),
      ),
    );
    // Then the stream's window fills: every frame it took is scored, in the order it took them.
    const windowSize = engine.engine.state.pipeline?.lanes[0].model.metadata.window_size ?? 0;
    const sent = 2 * rounds + windowSize;
    for (let step = 2 * rounds; step < sent; step++) {
      const answer = await send(server.port, frame(step, 0));
      assert.equal(answer.status, 202, answer.text);
    }
    await waitFor(
      async () => (await stats()).frames.scored === sent - windowSize + 1,
      "every frame of a full window scored",
    );
    const now = await stats();
    assert.equal(now.frames.accepted, 2 + sent);
    assert.equal(now.frames.rejected, 0);
  });

  test("engine app takes a stream's next frame after frames it refused once their bodies arrived", async () => {
    const base = Date.UTC(2026, 0, 2);
    const at = (step: number, stream = "line-2") =>
      gzip(
        jsonFrame(model.featureNames, model.normalFrame(step), {
          stream_id: stream,
          timestamp: base + step * 1000,
        }),
      );
    const refused = [
      at(5),
      at(5), // duplicate
      at(4), // out of order
      gzip(jsonFrame(model.featureNames, model.normalFrame(0), { timestamp: Date.now() + 3.6e6 })),
      gzip('{"data":{"nope":1}}'), // 422 once decoded
      gzip("{"), // 400 once decoded
    ];
    const statuses = [];
    for (const body of refused) statuses.push((await send(server.port, body)).status);
    assert.deepEqual(statuses, [202, 202, 409, 422, 422, 400]);
    // Each of those ended its turn: the next frame is not held behind them.
    assert.equal((await send(server.port, at(6))).status, 202);
  });
});

/** What an accepted frame's answer reads: `202`, `accepted`, its own timestamp. */
function expect202(iso: string, text: string): string {
  const body = JSON.parse(text) as { queue_depth?: number };
  return `202 ${JSON.stringify({
    status: "accepted",
    stream_id: "line-1",
    timestamp: iso,
    queue_depth: body.queue_depth,
  })}`;
}
