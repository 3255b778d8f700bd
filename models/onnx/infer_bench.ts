// Per-window inference cost of an ONNX model file: ONNX Runtime CPU session, runs of 8 windows.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { parseModelMetadata } from "../../contracts/model.ts";
import { plantSeries } from "../train/plant_series.ts";

export interface InferenceCost {
  model: string;
  n_features: number;
  batch: number;
  runs: number;
  /** Median over runs of (run time / batch). */
  ms_per_window: number;
}

/**
 * Times `session.run` on batches of `batch` windows of simulated plant frames (every output the
 * model has is fetched, as the engine does) for about `seconds`, after a warm-up.
 *
 * @example await measureInference("models/featurewise_ocsvm.onnx", { batch: 8, seconds: 2 });
 */
export async function measureInference(
  onnxPath: string,
  opts: { batch: number; seconds: number; threads?: number },
): Promise<InferenceCost> {
  const meta = parseModelMetadata(
    JSON.parse(readFileSync(onnxPath.replace(/\.onnx$/, ".json"), "utf8")),
  );
  const W = meta.window_size;
  const F = meta.n_features;
  const B = opts.batch;
  const session = await ort.InferenceSession.create(readFileSync(onnxPath), {
    intraOpNumThreads: opts.threads ?? 1,
  });
  const frames = plantSeries(F, 32 + W, 1, 99);
  const inputs: ort.Tensor[] = [];
  for (let k = 0; k < 4; k++) {
    const x = new Float32Array(B * W * F);
    for (let b = 0; b < B; b++) {
      const t0 = (k * B + b) % 32;
      x.set(frames.values.subarray(t0 * F, (t0 + W) * F), b * W * F);
    }
    inputs.push(new ort.Tensor("float32", x, [B, W, F]));
  }
  for (let i = 0; i < 3; i++) await session.run({ [meta.input_name]: inputs[i % 4] });
  const times: number[] = [];
  const end = performance.now() + opts.seconds * 1000;
  while (performance.now() < end || times.length < 5) {
    const t = performance.now();
    await session.run({ [meta.input_name]: inputs[times.length % 4] });
    times.push((performance.now() - t) / B);
  }
  times.sort((a, b) => a - b);
  await session.release();
  return {
    model: meta.name,
    n_features: F,
    batch: B,
    runs: times.length,
    ms_per_window: Math.round(times[times.length >> 1] * 1000) / 1000,
  };
}

// As a script: prints the measurement of each `--model` file as one JSON line.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      model: { type: "string", multiple: true, default: ["models/featurewise_ocsvm.onnx"] },
      batch: { type: "string", default: "8" },
      seconds: { type: "string", default: "2" },
    },
  });
  for (const path of values.model ?? []) {
    const cost = await measureInference(path, {
      batch: Number(values.batch),
      seconds: Number(values.seconds),
    });
    console.log(JSON.stringify({ path, ...cost }));
  }
}
