import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as zlib from "node:zlib";
import fc from "fast-check";
import { HttpError } from "../../contracts/error.ts";
import { type AlertSink, startAlertSink } from "../_test/alert_sink.ts";
import { startTestEngine, type TestEngine } from "../_test/engine_harness.ts";
import { type ModelFixture, trainFixtureModel } from "../_test/model_fixture.ts";
import { damaged, rootText } from "./_frame_arbitraries.ts";
import { createFeatureLayout } from "./feature_layout.ts";
import { createThreadIngestor } from "./ingestor.ts";

const encode = (s: string) => new TextEncoder().encode(s);

/** Malformed bodies of every kind the issue lists, with the headers they come with. */
function malformed(names: readonly string[]) {
  const data = names.map((n, i) => `"${n}":${i}`).join(",");
  const valid = `{"data":{${data}}}`;
  const gz = zlib.gzipSync(encode(valid));
  const text = fc.oneof(
    rootText(names),
    fc.constantFrom(
      "",
      valid.replace(":0,", ":NaN,"),
      valid.replace(":0,", ":Infinity,"),
      valid.replace(":0,", ":-Infinity,"),
      valid.replace(":0,", ":1e999,"),
      valid.replace(":0,", `:${"9".repeat(5000)},`),
      valid.replace(":0,", `:"${"x".repeat(100_000)}",`),
      valid.replace(":0,", `:${"[".repeat(50_000)}${"]".repeat(50_000)},`),
      `${"[".repeat(200_000)}`,
      `{"data":{"__proto__":{"polluted":1},${data}}}`,
      `{"__proto__":{"polluted":1},"data":{${data}}}`,
      `{"data":{${data}},"constructor":{"prototype":{"polluted":1}}}`,
      `{"data":[${names.map((_, i) => i).join(",")}]}`,
      `{"data":{${data}}}${"\u0000".repeat(3)}`,
    ),
  );
  const bytes = fc.oneof(
    text.map(encode),
    damaged(text),
    fc.uint8Array({ maxLength: 2000 }),
    fc.nat(gz.length).map((n) => gz.slice(0, n)),
    fc.tuple(fc.nat(gz.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
      const copy = gz.slice();
      copy[at] ^= x;
      return copy;
    }),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => Uint8Array.from([...gz, ...tail])),
    text.map((t) => new Uint8Array(zlib.gzipSync(encode(t)))),
    text.map((t) => new Uint8Array(zlib.deflateSync(encode(t)))),
  );
  const headers = fc.record(
    {
      "content-type": fc.constantFrom(
        "application/json",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "text/plain",
      ),
      "content-encoding": fc.constantFrom("gzip", "deflate", "identity", "br", "x-gzip", ""),
      "x-timestamp": fc.constantFrom("1700000000000", "soon", ""),
      "x-stream-id": fc.constantFrom("s1", "bad id", ""),
    },
    { requiredKeys: [] },
  );
  return fc.tuple(bytes, headers);
}

test("ingestor answers thousands of malformed bodies with a 4xx and touches nothing but `into`", async () => {
  const names = Array.from({ length: 8 }, (_, i) => `feature_${i}`);
  const layout = createFeatureLayout(names);
  const ingestor = createThreadIngestor({
    layout,
    limits: { maxBodyBytes: 512 * 1024, maxDecompressedBytes: 1024 * 1024, bodyTimeoutMs: 5000 },
  });
  const valid = encode(`{"data":{${names.map((n, i) => `"${n}":${i}`).join(",")}}}`);
  const expected = Float32Array.from(names, (_, i) => i);
  await fc.assert(
    fc.asyncProperty(malformed(names), async ([body, headers]) => {
      const into = new Float32Array(layout.size);
      const request = new Request("http://engine/", {
        method: "POST",
        body: body as BodyInit,
        headers,
      });
      try {
        await ingestor.ingest(request, into);
      } catch (error) {
        assert.ok(error instanceof HttpError, `not an HttpError: ${error}`);
        assert.ok(error.status >= 400 && error.status < 500, `${error.status} ${error.message}`);
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      // Nothing left behind: the next good frame decodes exactly.
      const next = new Float32Array(layout.size);
      await ingestor.ingest(new Request("http://engine/", { method: "POST", body: valid }), next);
      assert.deepEqual(next, expected);
    }),
    { numRuns: 3000 },
  );
  await ingestor.close();
});

let model: ModelFixture;
let sink: AlertSink;
let engine: TestEngine;

before(async () => {
  model = await trainFixtureModel({ features: 40, frames: 120 });
  sink = await startAlertSink();
  engine = await startTestEngine(model, sink, { QUEUE_MAX_SIZE: "4" });
});
after(async () => {
  await engine?.stop();
  await sink?.close();
  await model?.remove();
});

test("engine app answers malformed /data-enqueue bodies with a 4xx and leaves the queue empty", async () => {
  await engine.engine.app.request("/stats/reset", { method: "POST" });
  // Bodies that happen to be valid frames are left out: the app must accept none of the rest.
  const layout = createFeatureLayout(model.featureNames);
  const oracle = createThreadIngestor({
    layout,
    limits: {
      maxBodyBytes: 512 * 1024,
      maxDecompressedBytes: 4 * 1024 * 1024,
      bodyTimeoutMs: 5000,
    },
  });
  const isValid = (body: Uint8Array, headers: Record<string, string>) =>
    oracle
      .ingest(
        new Request("http://engine/", { method: "POST", body: body as BodyInit, headers }),
        new Float32Array(layout.size),
      )
      .then(
        () => true,
        () => false,
      );
  let rejected = 0;
  await fc.assert(
    fc.asyncProperty(malformed(model.featureNames), async ([body, headers]) => {
      fc.pre(!(await isValid(body, headers)));
      const response = await engine.post(body as BodyInit, headers);
      const text = await response.text();
      assert.ok(response.status < 500, `${response.status} ${text}`);
      if (response.status >= 400) {
        rejected++;
        const error = JSON.parse(text);
        assert.equal(typeof error.error, "string");
        assert.equal(typeof error.message, "string");
      }
    }),
    { numRuns: 1500 },
  );
  const stats = await engine.stats();
  assert.ok(rejected >= 1000, `${rejected} rejected`);
  assert.equal(stats.frames.accepted, 0);
  assert.equal(stats.frames.rejected, rejected);
  assert.equal(stats.queue.depth, 0);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
