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
