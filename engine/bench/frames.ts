// Benchmark frames from the plant generator, encoded once the way producers send them.
import { gzipSync } from "node:zlib";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { createPlant } from "../../models/signal/mod.ts";

export interface BenchFrames {
  nFeatures: number;
  /** `{"data":{"feature_0":...}}` as UTF-8, the way upstream builds it (before gzip). */
  json: Uint8Array[];
  /** The same frames gzip-compressed: what goes on the wire. */
  gzipJson: Uint8Array[];
  /** The same values as little-endian float32 (binary frames, uncompressed). */
  binary: Uint8Array[];
}

/**
 * Builds `count` consecutive plant frames. Values are written as the shortest text that reads
 * back as the same double (`String(x)` of the float32 value widened), as a JSON encoder of double
 * readings does: ~870 KB per 25,000-feature frame, ~300 KB gzipped.
 *
 * @example const frames = makeBenchFrames({ nFeatures: 25_000, count: 16 });
 */
export function makeBenchFrames(options: {
  nFeatures: number;
  count: number;
  seed?: number;
}): BenchFrames {
  const { nFeatures, count } = options;
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`'count' must be >= 1, got ${count}`);
  const plant = createPlant({ nFeatures, seed: options.seed });
  const keys = defaultFeatureNames(nFeatures).map((name) => `"${name}":`);
  const encoder = new TextEncoder();
  const frames: BenchFrames = { nFeatures, json: [], gzipJson: [], binary: [] };
  for (let f = 0; f < count; f++) {
    const values = plant.next();
    const parts = new Array<string>(nFeatures);
    for (let i = 0; i < nFeatures; i++) parts[i] = keys[i] + values[i];
    const json = encoder.encode(`{"data":{${parts.join(",")}}}`);
    frames.json.push(json);
    frames.gzipJson.push(new Uint8Array(gzipSync(json)));
    frames.binary.push(new Uint8Array(values.buffer.slice(0)));
  }
  return frames;
}
