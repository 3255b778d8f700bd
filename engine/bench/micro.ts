// In-process measurements: the gunzip + JSON.parse floor, the scanner vs JSON.parse + valibot, model inference.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { createFeatureLayout } from "../ingest/feature_layout.ts";
import { JsonFrameScanner } from "../ingest/json_frame_scanner.ts";
import { createValibotFrameDecoder } from "../ingest/valibot_frame.ts";
import type { BenchFrames } from "./frames.ts";

/** Mean milliseconds per call of `fn(i)`, run for about `seconds` after a short warm-up. */
export function msPerCall(fn: (i: number) => void, seconds: number): number {
  for (let i = 0; i < 5; i++) fn(i);
  let calls = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) fn(calls++);
  return (performance.now() - start) / calls;
}

export interface Floor {
  ms_per_frame: number;
  frames_per_s: number;
}

/** The floor: gunzip + UTF-8 decode + `JSON.parse` of the wire frames, one core, nothing else. */
export function measureFloor(frames: BenchFrames, seconds: number): Floor {
  const utf8 = new TextDecoder();
  const n = frames.gzipJson.length;
  const ms = msPerCall((i) => JSON.parse(utf8.decode(gunzipSync(frames.gzipJson[i % n]))), seconds);
  return { ms_per_frame: round(ms), frames_per_s: round(1000 / ms) };
}

export interface Micro {
  gunzip_ms: number;
  json_parse_ms: number;
  json_parse_valibot_ms: number;
  scanner_ms: number;
  gunzip_scanner_ms: number;
  /** (JSON.parse + valibot) / scanner, per frame. */
  scanner_speedup: number;
  /**
   * The default model's ONNX Runtime CPU inference (one thread, runs of 8 windows): median ms per
   * window; null when the model's feature count differs from the frames'.
   */
  inference_ms_per_window: number | null;
}

const MODEL = fileURLToPath(new URL("../../models/featurewise_ocsvm.onnx", import.meta.url));
const INFER_BENCH = fileURLToPath(new URL("../../models/onnx/infer_bench.ts", import.meta.url));

/**
 * Measured in a child process (ONNX Runtime's run is asynchronous, this module is not): the same
 * script measures any model file, so an older and a newer graph compare like for like.
 */
function inferenceMsPerWindow(nFeatures: number, seconds: number): number | null {
  if (!existsSync(MODEL)) return null;
  const out = execFileSync(
    process.execPath,
    [
      "--import",
      "tsx",
      INFER_BENCH,
      "--model",
      MODEL,
      "--batch",
      "8",
      "--seconds",
      String(seconds),
    ],
    { encoding: "utf8" },
  );
  const cost = JSON.parse(out.trim().split("\n").pop() ?? "{}");
  return cost.n_features === nFeatures ? cost.ms_per_window : null;
}

/** Per-frame cost of each decoding step on the inflated frames, one core. */
export function measureMicro(frames: BenchFrames, seconds: number): Micro {
  const layout = createFeatureLayout(defaultFeatureNames(frames.nFeatures));
  const scanner = new JsonFrameScanner(layout);
  const reference = createValibotFrameDecoder(layout);
  const into = new Float32Array(layout.size);
  const utf8 = new TextDecoder();
  const n = frames.json.length;
  const gunzip = msPerCall((i) => gunzipSync(frames.gzipJson[i % n]), seconds);
  const parse = msPerCall((i) => JSON.parse(utf8.decode(frames.json[i % n])), seconds);
  const valibot = msPerCall((i) => reference.decode(frames.json[i % n], into), seconds);
  const scan = msPerCall((i) => scanner.scan(frames.json[i % n], into), seconds);
  const both = msPerCall((i) => scanner.scan(gunzipSync(frames.gzipJson[i % n]), into), seconds);
  return {
    gunzip_ms: round(gunzip),
    json_parse_ms: round(parse),
    json_parse_valibot_ms: round(valibot),
    scanner_ms: round(scan),
    gunzip_scanner_ms: round(both),
    scanner_speedup: round(valibot / scan),
    inference_ms_per_window: inferenceMsPerWindow(frames.nFeatures, seconds),
  };
}

export const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
