import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as zlib from "node:zlib";
import { HttpError } from "../../contracts/error.ts";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { parseModelRoutes, StreamRoutes } from "../../contracts/model_routes.ts";
import { createFeatureLayout } from "./feature_layout.ts";
import { createIngestor, createThreadIngestor, type Ingestor } from "./ingestor.ts";
import { ModelLayouts } from "./model_layouts.ts";

// Two assets with different sensor lists: the plant model (default) and a boiler model.
const plant = ["flow", "pressure", "temp"];
const boiler = ["b_temp_1", "b_temp_2", "b_flow", "b_level", "b_valve"];
const layouts = new ModelLayouts({
  models: [
    { name: "plant", names: plant },
    { name: "boiler", names: boiler },
  ],
  // Two stars and literal text after them: as a regular expression, quadratic on a long id.
  routes: parseModelRoutes("boiler-*=boiler,line-*-temp-*-x=boiler"),
});
const limits = { maxBodyBytes: 64 * 1024, maxDecompressedBytes: 256 * 1024, bodyTimeoutMs: 5000 };
const modes: [string, Ingestor][] = [
  ["in-thread", createThreadIngestor({ layout: layouts, limits })],
  ["workers", createIngestor({ layout: layouts, limits, workers: 2 })],
];
/** The plant model alone, no routes: how a single-model engine answers. */
const single = createThreadIngestor({ layout: createFeatureLayout(plant), limits });
after(() => Promise.all(modes.map(([, ingestor]) => ingestor.close())));

const json = (names: string[], head: string, tail = "") =>
  `{${head}"data":{${names.map((n, i) => `"${n}":${i + 0.5}`).join(",")}}${tail}}`;
const post = (body: Uint8Array | string, headers: Record<string, string> = {}) =>
  new Request("http://engine/data-enqueue", { method: "POST", body: body as BodyInit, headers });

/** A single-model ingest's outcome. */
async function outcome(ingestor: Ingestor, request: Request) {
  try {
    await ingestor.ingest(request, new Float32Array(plant.length));
    return { ok: true as const };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { ok: false as const, status: error.status, code: error.code, message: error.message };
  }
}

/**
 * Frames whose `stream_id` is no stream id: too long (the first two start like the two-star glob,
 * the third matches it but is over 128 characters), not a string, holding a space.
 */
const longId = `line-${"-temp-".repeat(5000)}`;
const notStreamIds = [
  json(plant, `"stream_id":${JSON.stringify(longId)},`),
  `{"stream_id":${JSON.stringify(longId)},"data":{}}`,
  json(boiler, `"stream_id":${JSON.stringify(`line-${"a".repeat(120)}-temp-1-x`)},`),
  json(plant, "", ',"stream_id":5'),
  json(boiler, '"stream_id":"boiler 1",'),
];

/** Ingests into per-lane arrays, recording which lane was asked for. */
async function routed(ingestor: Ingestor, request: Request) {
  const lanes = [new Float32Array(plant.length), new Float32Array(boiler.length)];
  const asked: number[] = [];
  try {
    const frame = await ingestor.ingest(request, (model) => {
      asked.push(model);
      return lanes[model];
    });
    return { ok: true as const, frame, lanes, asked };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return {
      ok: false as const,
      status: error.status,
      code: error.code,
      message: error.message,
      asked,
    };
  }
}

for (const [mode, ingestor] of modes) {
  test(`routed ingest (${mode}) puts each stream's frame in its model's lane, stream_id first or last`, async () => {
    const first = await routed(ingestor, post(json(boiler, '"stream_id":"boiler-1",')));
    assert.ok(first.ok);
    assert.equal(first.frame.model, 1);
    assert.deepEqual(first.asked, [1]);
    assert.deepEqual(Array.from(first.lanes[1]), [0.5, 1.5, 2.5, 3.5, 4.5]);

    const last = await routed(
      ingestor,
      post(zlib.gzipSync(json(plant, "", ',"stream_id":"line-1"'))),
    );
    assert.ok(last.ok);
    assert.equal(last.frame.model, 0);
    assert.equal(last.frame.streamId, "line-1");
    assert.deepEqual(Array.from(last.lanes[0]), [0.5, 1.5, 2.5]);

    // No stream_id: the default stream, which no glob matches.
    const none = await routed(ingestor, post(json(plant, "")));
    assert.ok(none.ok);
    assert.equal(none.frame.model, 0);
  });

  test(`routed ingest (${mode}) routes binary frames by their X-Stream-Id header`, async () => {
    const body = new Uint8Array(Float32Array.from([1, 2, 3, 4, 5]).buffer);
    const out = await routed(
      ingestor,
      post(body, { "content-type": "application/octet-stream", "x-stream-id": "boiler-9" }),
    );
    assert.ok(out.ok);
    assert.equal(out.frame.model, 1);
    assert.equal(out.frame.streamId, "boiler-9");
    assert.deepEqual(Array.from(out.lanes[1]), [1, 2, 3, 4, 5]);
  });

  test(`routed ingest (${mode}) refuses a frame that does not fit its stream's model, naming it`, async () => {
    // The plant's sensors sent on a boiler stream: 422, nothing written anywhere.
    const out = await routed(ingestor, post(json(plant, '"stream_id":"boiler-2",')));
    assert.ok(!out.ok);
    assert.equal(out.status, 422);
    assert.equal(out.code, "frame_unknown_features");
    assert.match(out.message, /stream "boiler-2" is scored by model "boiler" \(5 features\)/);
    assert.deepEqual(out.asked, []);

    const binary = await routed(
      ingestor,
      post(new Uint8Array(12), {
        "content-type": "application/octet-stream",
        "x-stream-id": "boiler-3",
      }),
    );
    assert.ok(!binary.ok);
    assert.equal(binary.code, "frame_invalid_shape");
    assert.match(binary.message, /model "boiler"/);
  });

  test(`routed ingest (${mode}) refuses a stream_id that is no stream id as a single-model engine does`, async () => {
    for (const body of notStreamIds) {
      const out = await routed(ingestor, post(zlib.gzipSync(body)));
      const alone = await outcome(single, post(zlib.gzipSync(body)));
      assert.ok(!out.ok && !alone.ok);
      assert.deepEqual(
        { status: out.status, code: out.code, message: out.message },
        { status: alone.status, code: alone.code, message: alone.message },
        body.slice(0, 80),
      );
      assert.ok(out.message.length < 300, `${out.message.length} characters`);
      assert.deepEqual(out.asked, []);
    }
    const long = await routed(ingestor, post(zlib.gzipSync(notStreamIds[0])));
    assert.ok(!long.ok);
    assert.equal(long.code, "frame_invalid_stream_id");
    const empty = await routed(ingestor, post(zlib.gzipSync(notStreamIds[1])));
    assert.ok(!empty.ok);
    assert.equal(empty.code, "frame_missing_features");
  });

  test(`routed ingest (${mode}) passes the target's refusal on`, async () => {
    await assert.rejects(
      ingestor.ingest(post(json(boiler, '"stream_id":"boiler-1",')), () => {
        throw new HttpError(429, "queue_full", "full");
      }),
      (error: HttpError) => error.status === 429,
    );
  });
}

test("routed ingest hands the route globs stream ids only", async (t) => {
  const route = t.mock.method(StreamRoutes.prototype, "route");
  const [, ingestor] = modes[0];
  for (const body of notStreamIds) await routed(ingestor, post(zlib.gzipSync(body)));
  const binary = await routed(
    ingestor,
    post(new Uint8Array(20), {
      "content-type": "application/octet-stream",
      "x-stream-id": `line-${"-temp-".repeat(1000)}`,
    }),
  );
  assert.ok(!binary.ok);
  assert.equal(binary.code, "frame_invalid_stream_id");
  // A valid one is routed as before.
  const valid = await routed(ingestor, post(json(boiler, '"stream_id":"line-1-temp-2-x",')));
  assert.ok(valid.ok);
  assert.equal(valid.frame.model, 1);
  const asked = route.mock.calls.map((call) => call.arguments[0]);
  assert.ok(asked.includes("line-1-temp-2-x"));
  for (const id of asked) assert.match(id, STREAM_ID_PATTERN);
});

test("ModelLayouts refuses routes to a model it does not hold", () => {
  assert.throws(
    () =>
      new ModelLayouts({
        models: [{ name: "plant", names: plant }],
        routes: parseModelRoutes("b-*=boiler"),
      }),
    /names model "boiler", which is not loaded/,
  );
});
