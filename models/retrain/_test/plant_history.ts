// Test data for retraining: plant frames recorded into a real history folder, and models trained on the plant into a real registry.

import type { RunningCondition } from "../../../contracts/running_condition.ts";
import { feed, type Row } from "../../../engine/history/_test/scored_rows.ts";
import {
  HistoryRecorder,
  type HistoryRecorderOptions,
  type RecordedModel,
} from "../../../engine/history/mod.ts";
import { ModelRegistry } from "../../../engine/infer/mod.ts";
import { trainFeaturewise } from "../../featurewise/train.ts";
import { createPlant } from "../../signal/mod.ts";
import { buildArtifacts } from "../../train/artifacts.ts";

export const FEATURES = 8;
export const NAME = "plant8";
export const T0 = 1_700_000_000_000;

/** `n` frames of the 8-sensor plant, day `day`; `edit(t, frame, std)` may change a frame (std: each sensor's normal one). */
export function plantFrames(
  n: number,
  day: number,
  edit?: (t: number, frame: Float32Array, std: Float64Array) => void,
) {
  const plant = createPlant({ nFeatures: FEATURES, noiseSeed: day });
  return Array.from({ length: n }, (_, t) => {
    const frame = plant.next();
    edit?.(t, frame, plant.sensors.std);
    return frame;
  });
}

/**
 * Trains on `frames` with the training code and writes the version into `registry` (activated
 * when `activate`), with `running` as its running condition when given.
 */
export async function trainInto(
  registryDir: string,
  frames: Float32Array[],
  activate: boolean,
  running?: RunningCondition,
) {
  const values = new Float32Array(frames.length * FEATURES);
  for (const [t, f] of frames.entries()) values.set(f, t * FEATURES);
  const result = trainFeaturewise(
    { values, nFrames: frames.length, nFeatures: FEATURES },
    { kind: "featurewise_ocsvm_svdd" },
  );
  const names = Array.from({ length: FEATURES }, (_, i) => `feature_${i}`);
  const { onnx, meta } = buildArtifacts(NAME, result, names, { kind: "test" }, { running });
  const written = await new ModelRegistry(registryDir).write(onnx, meta, { activate, by: "test" });
  return { meta, written };
}

export const recordedModel = (version: string): RecordedModel => ({
  name: NAME,
  version,
  n_features: FEATURES,
  window_size: 5,
  feature_names: Array.from({ length: FEATURES }, (_, i) => `feature_${i}`),
});

/**
 * Records `frames` of stream `s` as the engine would: `flagged(t)` the sensors flagged in the
 * window ending at frame t (the alert path's incident tracker confirms 2 of 3, resolves after 3
 * quiet: `feed`'s default);
 * `verdictOf` the operators' verdicts the recorder writes into the index.
 */
export async function recordHistory(
  dir: string,
  version: string,
  frames: Float32Array[],
  flagged: (t: number) => number[] = () => [],
  options: Partial<Pick<HistoryRecorderOptions, "verdictOf" | "everyN" | "runFrames">> = {},
): Promise<void> {
  const model = recordedModel(version);
  const recorder = new HistoryRecorder({
    dir,
    model,
    maxBytes: 2 ** 30,
    everyN: 1,
    runFrames: 100,
    ...options,
  });
  const rows: Row[] = frames.map((values, seq) => ({
    stream: "s",
    seq,
    values,
    flagged: flagged(seq),
  }));
  feed(recorder, model, rows, { t0: T0, batchSize: 64 });
  await recorder.close();
}
