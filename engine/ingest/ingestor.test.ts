import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as zlib from "node:zlib";
import { HttpError } from "../../contracts/error.ts";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { createFeatureLayout } from "./feature_layout.ts";
import { frameChecksum } from "./frame_checksum.ts";
import { createIngestor, createThreadIngestor, type Ingestor } from "./ingestor.ts";

const names = defaultFeatureNames(50);
const layout = createFeatureLayout(names);
const limits = { maxBodyBytes: 64 * 1024, maxDecompressedBytes: 256 * 1024, bodyTimeoutMs: 5000 };
const values = Float32Array.from(names, (_, i) => (i - 25) / 7);
const frameJson = (extra = "") =>
  `{"data":{${names.map((n, i) => `"${n}":${values[i]}`).join(",")}}${extra}}`;
const encode = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const post = (body: Uint8Array | string, headers: Record<string, string> = {}) =>
  new Request("http://engine/data-enqueue", { method: "POST", body: body as BodyInit, headers });

const modes: [string, Ingestor][] = [
  ["in-thread", createThreadIngestor({ layout, limits })],
  ["workers", createIngestor({ layout, limits, workers: 2 })],
];
after(() => Promise.all(modes.map(([, ingestor]) => ingestor.close())));

async function outcome(ingestor: Ingestor, request: Request) {
  const into = new Float32Array(layout.size);
  try {
    const frame = await ingestor.ingest(request, into);
    return { ok: true as const, frame, into };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { ok: false as const, status: error.status, code: error.code, message: error.message };
  }
}

for (const [mode, ingestor] of modes) {
  test(`ingestor (${mode}) accepts gzip JSON posted as a form with no Content-Encoding`, async () => {
    const body = zlib.gzipSync(
      encode(frameJson(',"stream_id":"line-1","timestamp":1700000000000')),
    );
    const out = await outcome(
      ingestor,
      post(body, { "content-type": "application/x-www-form-urlencoded" }),
    );
    assert.ok(out.ok, JSON.stringify(out));
    assert.deepEqual(out.frame, {
      streamId: "line-1",
      timestamp: 1_700_000_000_000,
      bodyBytes: body.length,
      model: 0,
      // Dated by its sender: its values' checksum tells a repeat from another frame that millisecond.
      checksum: frameChecksum(values),
    });
    assert.deepEqual(out.into, values);
  });

  test(`ingestor (${mode}) accepts zlib, raw deflate and identity bodies`, async () => {
    const json = encode(frameJson());
    for (const [body, headers] of [
      [zlib.deflateSync(json), {}],
      [zlib.deflateSync(json), { "content-encoding": "deflate" }],
      [zlib.deflateRawSync(json), { "content-encoding": "deflate" }],
      [zlib.gzipSync(json), { "content-encoding": "gzip", "content-type": "text/plain" }],
      [json, { "content-type": "application/json" }],
      [json, { "content-encoding": "identity" }],
    ] as [Uint8Array, Record<string, string>][]) {
      const out = await outcome(ingestor, post(body, headers));
      assert.ok(out.ok, `${JSON.stringify(headers)}: ${JSON.stringify(out)}`);
      assert.deepEqual(out.into, values);
      assert.equal(out.frame.streamId, "default");
      assert.equal(out.frame.timestamp, undefined);
    }
  });

  test(`ingestor (${mode}) rejects bad encodings and compression with 400/415`, async () => {
    const json = encode(frameJson());
    const gz = zlib.gzipSync(json);
    const cases: [Uint8Array, Record<string, string>, number, string][] = [
      [gz, { "content-encoding": "br" }, 415, "unsupported_encoding"],
      [gz, { "content-encoding": "gzip, gzip" }, 415, "unsupported_encoding"],
      [json, { "content-encoding": "gzip" }, 400, "invalid_compression"],
      [json, { "content-encoding": "deflate" }, 400, "invalid_compression"],
      [gz.subarray(0, gz.length - 9), {}, 400, "invalid_compression"],
      [cat(gz, encode("garbage")), {}, 400, "invalid_compression"],
      [cat(gz, new Uint8Array(4)), {}, 400, "invalid_compression"],
      [cat(zlib.deflateSync(json), encode("x")), {}, 400, "invalid_compression"],
      [zlib.gzipSync(encode(`${frameJson()} x`)), {}, 400, "invalid_json"],
      [encode(""), {}, 400, "invalid_json"],
    ];
    for (const [body, headers, status, code] of cases) {
      const out = await outcome(ingestor, post(body, headers));
      assert.ok(!out.ok, `${code} ${JSON.stringify(headers)} accepted`);
      assert.equal(out.status, status, out.message);
      assert.equal(out.code, code, out.message);
    }
  });

  test(`ingestor (${mode}) quotes a bounded part of an unsupported Content-Encoding`, async () => {
    const coding = "b".repeat(8000);
    const out = await outcome(ingestor, post(frameJson(), { "content-encoding": coding }));
    assert.ok(!out.ok);
    assert.equal(out.code, "unsupported_encoding");
    assert.ok(out.message.length < 300, `${out.message.length} characters`);
    assert.match(out.message, /^Content-Encoding "b{128}… \(8000 characters\)" is not supported/);
  });

  test(`ingestor (${mode}) stops a zip bomb at the decompressed cap`, async () => {
    const bomb = zlib.gzipSync(new Uint8Array(60 * 1024 * 1024), { level: 9 });
    assert.ok(bomb.length < limits.maxBodyBytes);
    const out = await outcome(ingestor, post(bomb));
    assert.ok(!out.ok);
    assert.equal(out.status, 413);
    assert.equal(out.code, "decompressed_too_large");
  });

  test(`ingestor (${mode}) refuses an oversized streamed body without reading it all: plain past maxDecompressedBytes, compressed past maxBodyBytes`, async () => {
    for (const [headers, cap] of [
      [{}, limits.maxDecompressedBytes],
      [{ "content-encoding": "gzip" }, limits.maxBodyBytes],
    ] as const) {
      let pulled = 0;
      const chunk = new Uint8Array(16 * 1024).fill(0x20);
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += chunk.length;
          if (pulled > 2 * 1024 * 1024) controller.close();
          else controller.enqueue(chunk);
        },
      });
      const request = new Request("http://engine/data-enqueue", {
        method: "POST",
        body,
        headers,
        duplex: "half",
      } as RequestInit);
      const out = await outcome(ingestor, request);
      assert.ok(!out.ok);
      assert.equal(out.code, "payload_too_large");
      assert.ok(pulled < cap + 64 * 1024, `pulled ${pulled} bytes, cap ${cap}`);
    }
  });

  test(`ingestor (${mode}) takes a plain body over maxBodyBytes, its own decompressed form`, async () => {
    const padded = `${frameJson()}${" ".repeat(limits.maxBodyBytes)}`;
    const out = await outcome(ingestor, post(padded, { "content-type": "application/json" }));
    assert.ok(out.ok, JSON.stringify(out));
    assert.deepEqual(out.into, values);
    const unannounced = zlib.gzipSync(encode(padded), { level: 0 });
    const refused = await outcome(ingestor, post(unannounced));
    assert.ok(!refused.ok && refused.code === "payload_too_large", JSON.stringify(refused));
  });

  test(`ingestor (${mode}) reads binary float32 frames with their headers`, async () => {
    const raw = new Uint8Array(values.buffer.slice(0));
    for (const body of [raw, zlib.gzipSync(raw)]) {
      const out = await outcome(
        ingestor,
        post(body, {
          "content-type": "application/octet-stream",
          "x-stream-id": "press-7",
          "x-timestamp": "2026-11-24T09:00:00.250Z",
        }),
      );
      assert.ok(out.ok, JSON.stringify(out));
      assert.deepEqual(out.into, values);
      assert.deepEqual(out.frame, {
        streamId: "press-7",
        timestamp: Date.UTC(2026, 10, 24, 9, 0, 0, 250),
        bodyBytes: body.length,
        model: 0,
        checksum: frameChecksum(values),
      });
    }
    const epoch = await outcome(
      ingestor,
      post(raw, { "content-type": "application/octet-stream", "x-timestamp": "1700000000123" }),
    );
    assert.ok(epoch.ok);
    assert.equal(epoch.frame.timestamp, 1_700_000_000_123);
  });

  test(`ingestor (${mode}) rejects broken binary frames with 422`, async () => {
    const bin = { "content-type": "application/octet-stream" };
    const withNaN = values.slice();
    withNaN[3] = Number.NaN;
    withNaN[9] = Number.POSITIVE_INFINITY;
    const cases: [Uint8Array, Record<string, string>, string, RegExp][] = [
      [new Uint8Array(8), bin, "frame_invalid_shape", /200 bytes/],
      [new Uint8Array(withNaN.buffer), bin, "frame_invalid_value", /"feature_3", "feature_9"/],
      [
        new Uint8Array(values.buffer),
        { ...bin, "x-timestamp": "soon" },
        "frame_invalid_timestamp",
        /timestamp/,
      ],
      [
        new Uint8Array(values.buffer),
        { ...bin, "x-timestamp": "1796627557" },
        "frame_invalid_timestamp",
        /^X-Timestamp 1796627557 looks like epoch seconds .*; send 1796627557000 if it is epoch seconds/,
      ],
      [
        new Uint8Array(values.buffer),
        { ...bin, "x-stream-id": "a b" },
        "frame_invalid_stream_id",
        /stream_id/,
      ],
    ];
    for (const [body, headers, code, message] of cases) {
      const out = await outcome(ingestor, post(body, headers));
      assert.ok(!out.ok, code);
      assert.equal(out.status, 422);
      assert.equal(out.code, code);
      assert.match(out.message, message);
    }
  });

  test(`ingestor (${mode}) names the first offending keys of a JSON frame`, async () => {
    const body = frameJson()
      .replace('"feature_7":', '"feature_77":')
      .replace('"feature_8":', '"bogus":');
    const out = await outcome(ingestor, post(zlib.gzipSync(encode(body))));
    assert.ok(!out.ok);
    assert.equal(out.status, 422);
    assert.equal(out.code, "frame_unknown_features");
    assert.match(out.message, /"feature_77"/);
  });
}

test("createIngestor validates its options with RangeErrors naming them", () => {
  assert.throws(
    () => createIngestor({ layout, limits: { ...limits, maxBodyBytes: 0 } }),
    /'maxBodyBytes'/,
  );
  assert.throws(() => createIngestor({ layout, limits, workers: -1 }), /'workers'/);
  assert.throws(() => createFeatureLayout(["a", "a"]), /'names' must be distinct/);
});
