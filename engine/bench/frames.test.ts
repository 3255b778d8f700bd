import assert from "node:assert/strict";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { createFeatureLayout } from "../ingest/feature_layout.ts";
import { JsonFrameScanner } from "../ingest/json_frame_scanner.ts";
import { makeBenchFrames } from "./frames.ts";

test("makeBenchFrames encodes the same values as gzip JSON and binary", () => {
  const frames = makeBenchFrames({ nFeatures: 300, count: 3, seed: 5 });
  const scanner = new JsonFrameScanner(createFeatureLayout(defaultFeatureNames(300)));
  for (let f = 0; f < 3; f++) {
    assert.deepEqual(new Uint8Array(gunzipSync(frames.gzipJson[f])), frames.json[f]);
    const fromJson = new Float32Array(300);
    scanner.scan(frames.json[f], fromJson);
    const b = frames.binary[f];
    assert.deepEqual(fromJson, new Float32Array(b.buffer, b.byteOffset, 300));
  }
  assert.notDeepEqual(frames.binary[0], frames.binary[1]);
});

test("makeBenchFrames replays back and forth and gives each stream its own stream_id", () => {
  const frames = makeBenchFrames({ nFeatures: 50, count: 4, seed: 5, streams: 2 });
  // 0 1 2 3 2 1: the loop never jumps from the last frame back to the first.
  assert.equal(frames.binary.length, 6);
  assert.equal(frames.binary[4], frames.binary[2]);
  assert.equal(frames.binary[5], frames.binary[1]);
  assert.equal(frames.gzipJsonByStream.length, 2);
  const text = new TextDecoder().decode(gunzipSync(frames.gzipJsonByStream[1][3]));
  assert.ok(text.startsWith('{"stream_id":"bench-1","data":{'));
  const values = new Float32Array(50);
  const scanned = new JsonFrameScanner(createFeatureLayout(defaultFeatureNames(50))).scan(
    new TextEncoder().encode(text),
    values,
  );
  assert.equal(scanned?.streamId, "bench-1");
  const b = frames.binary[3];
  assert.deepEqual(values, new Float32Array(b.buffer, b.byteOffset, 50));
});

test("makeBenchFrames names the streams with streamPrefix when given", () => {
  const frames = makeBenchFrames({
    nFeatures: 10,
    count: 2,
    seed: 5,
    streams: 2,
    streamPrefix: "line-b-",
  });
  const text = new TextDecoder().decode(gunzipSync(frames.gzipJsonByStream[1][0]));
  assert.ok(text.startsWith('{"stream_id":"line-b-1","data":{'));
});
