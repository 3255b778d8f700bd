import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { jsonFrame, startTestEngine } from "../_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { type NatsServer, startNatsServer } from "../bus/_test/nats_server.ts";
import { createRole } from "../roles/create_role.ts";
import type { Role } from "../roles/role_shell.ts";

// A producer writing `int(time.time())` sends epoch seconds where the engine reads epoch
// milliseconds: read as milliseconds they date the frame in January 1970, its stream's seconds
// 1 ms apart. Every intake refuses such a number, in the JSON body and in `X-Timestamp`, and
// the refusal leaves no trace.

// What `int(time.time())` gave on 2026-12-07; as milliseconds, 1970-01-21T19:03:47.557Z.
const SECONDS = 1796627557;
const NOW = Date.UTC(2026, 11, 7, 8);
const SAYS_SECONDS =
  /^(timestamp|X-Timestamp) 1796627557 looks like epoch seconds \(or a relative time\).*epoch milliseconds.*ISO 8601 with a zone/;

let model: ModelFixture;
let sink: AlertSink;

before(async () => {
  model = await trainFixtureModel({ features: 12, name: "seconds_12" });
  sink = await startAlertSink();
});
after(async () => {
  await sink?.close();
  await model?.remove();
});

const binary = (step: number) => new Uint8Array(model.normalFrame(step).buffer as ArrayBuffer);
const BINARY = { "content-type": "application/octet-stream" };

/** The refusals every intake gives a frame dated in epoch seconds, JSON and binary. */
async function refusesSeconds(
  post: (body: BodyInit, headers?: Record<string, string>) => Promise<Response>,
  stream: string,
) {
  const answers = [
    await post(
      jsonFrame(model.featureNames, model.normalFrame(0), {
        stream_id: stream,
        timestamp: SECONDS,
      }),
    ),
    await post(binary(1), { ...BINARY, "x-stream-id": stream, "x-timestamp": String(SECONDS) }),
  ];
  for (const [i, answer] of answers.entries()) {
    const body = await answer.json();
    assert.equal(answer.status, 422, `${["JSON", "binary"][i]}: ${JSON.stringify(body)}`);
    assert.equal(body.error, "frame_invalid_timestamp");
    assert.match(body.message, SAYS_SECONDS);
  }
}

test("engine refuses a frame dated in epoch seconds 422, JSON and binary, and keeps no trace of it", async () => {
  // One stream at most: a refused frame that took a stream's place would leave none for the next.
  const engine = await startTestEngine(
    model,
    sink,
    { MAX_STREAMS: "1" },
    { clock: { now: () => NOW } },
  );
  try {
    const before = await engine.stats();
    await refusesSeconds(engine.post, "python");
    const after = await engine.stats();
    assert.equal(after.frames.accepted, before.frames.accepted);
    assert.equal(after.frames.rejected, before.frames.rejected + 2);
    assert.equal(after.queue.depth, 0);
    // The next frame, in epoch milliseconds, is the only stream's first.
    const first = await engine.post(
      jsonFrame(model.featureNames, model.normalFrame(2), {
        stream_id: "other",
        timestamp: NOW - 1000,
      }),
    );
    const answer = await first.json();
    assert.equal(first.status, 202, JSON.stringify(answer));
    assert.deepEqual(
      [answer.status, answer.stream_id, answer.timestamp],
      ["accepted", "other", new Date(NOW - 1000).toISOString()],
    );
    // So is a binary frame whose X-Timestamp is epoch milliseconds, once the stream is there.
    const next = await engine.post(binary(3), {
      ...BINARY,
      "x-stream-id": "other",
      "x-timestamp": String(NOW),
    });
    assert.equal((await next.json()).status, "accepted");
  } finally {
    await engine.stop();
  }
});

describe("the scale-out ingest replica", () => {
  let server: NatsServer;
  let dataDir: string;
  let replica: Role;
  before(async () => {
    server = await startNatsServer();
    dataDir = await mkdtemp(join(tmpdir(), "ingest-seconds-"));
    const config = parseConfig(engineConfigSchema, {
      FRAME_BUS: "nats",
      ENGINE_ROLE: "ingest",
      NATS_URL: server.url,
      NATS_STREAM: "SECONDS",
      NATS_PARTITIONS: "1",
      MODEL_DIR: model.dir,
      DEFAULT_MODEL_NAME: model.name,
      DEFAULT_DEVICE: "cpu",
      DATA_DIR: dataDir,
      NESTJS_URL: "http://127.0.0.1:9",
      LOG_LEVEL: "silent",
    });
    replica = createRole({
      config,
      clock: { now: () => NOW },
      log: createLogger({ service: "engine", level: "silent" }),
    });
    await replica.start();
  });
  after(async () => {
    await replica?.shutdown(1000);
    await server?.remove();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test("ingest replica refuses a frame dated in epoch seconds 422 as the single process does, publishing nothing", async () => {
    const post = async (body: BodyInit, headers: Record<string, string> = {}) =>
      replica.app.request("/data-enqueue", { method: "POST", body, headers });
    const stats = async () => (await (await replica.app.request("/stats")).json()).frames;
    const before = await stats();
    await refusesSeconds(post, "python");
    const after = await stats();
    assert.equal(after.accepted, before.accepted);
    assert.equal(after.rejected, before.rejected + 2);
    // The stream's frames go on in epoch milliseconds.
    for (const timestamp of [NOW - 1000, NOW]) {
      const answer = await post(
        jsonFrame(model.featureNames, model.normalFrame(4), { stream_id: "python", timestamp }),
      );
      const body = await answer.json();
      assert.equal(answer.status, 202, JSON.stringify(body));
      assert.equal(body.timestamp, new Date(timestamp).toISOString());
    }
  });
});
