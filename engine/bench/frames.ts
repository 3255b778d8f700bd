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
  /**
   * Per stream k of `streams`, the gzip JSON frames with `"stream_id":"bench-k"` (`streamPrefix`
   * instead of `bench-` when given): each load connection plays its own stream, so its frames
   * reach their window in order.
   */
  gzipJsonByStream: Uint8Array[][];
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
  streams?: number;
  streamPrefix?: string;
}): BenchFrames {
  const { nFeatures, count } = options;
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`'count' must be >= 1, got ${count}`);
  const plant = createPlant({ nFeatures, seed: options.seed });
  const keys = defaultFeatureNames(nFeatures).map((name) => `"${name}":`);
  const encoder = new TextEncoder();
  const streams = options.streams ?? 0;
  const prefix = options.streamPrefix ?? "bench-";
  const frames: BenchFrames = {
    nFeatures,
    json: [],
    gzipJson: [],
    binary: [],
    gzipJsonByStream: [],
  };
  for (let k = 0; k < streams; k++) frames.gzipJsonByStream.push([]);
  for (let f = 0; f < count; f++) {
    const values = plant.next();
    const parts = new Array<string>(nFeatures);
    for (let i = 0; i < nFeatures; i++) parts[i] = keys[i] + values[i];
    const data = parts.join(",");
    const json = encoder.encode(`{"data":{${data}}}`);
    frames.json.push(json);
    for (let k = 0; k < streams; k++) {
      const body = encoder.encode(`{"stream_id":"${prefix}${k}","data":{${data}}}`);
      frames.gzipJsonByStream[k].push(new Uint8Array(gzipSync(body)));
    }
    frames.gzipJson.push(new Uint8Array(gzipSync(json)));
    frames.binary.push(new Uint8Array(values.buffer.slice(0)));
  }
  // Replayed in a loop, 0..n-1 then n-2..1: every step is between neighbouring frames, so the
  // replay looks like a normal plant instead of jumping from the last frame back to the first
  // (a jump the model rightly flags, which would turn a throughput run into an alert storm).
  for (const list of [frames.json, frames.gzipJson, frames.binary, ...frames.gzipJsonByStream]) {
    for (let f = count - 2; f >= 1; f--) list.push(list[f]);
  }
  return frames;
}
