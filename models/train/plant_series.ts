// Records frames of the simulated plant as a training series (the CLI's data when no --input is given).
import type { RunningCondition } from "../../contracts/running_condition.ts";
import { createPlant, mixSeed, plantRunningCondition } from "../signal/mod.ts";
import type { LoadedSeries } from "./input.ts";

/**
 * `frames` frames of a `nFeatures`-sensor plant; the noise realisation depends on `seed`. With
 * the plant's running condition (its drive sensor), which the models trained on it carry.
 */
export function plantSeries(
  nFeatures: number,
  frames: number,
  plantSeed: number,
  seed: number,
): LoadedSeries & { running?: RunningCondition } {
  const plant = createPlant({ nFeatures, seed: plantSeed, noiseSeed: mixSeed(seed, 0x7a11) });
  const values = new Float32Array(frames * nFeatures);
  for (let t = 0; t < frames; t++) plant.next(values.subarray(t * nFeatures, (t + 1) * nFeatures));
  return {
    values,
    nFrames: frames,
    nFeatures,
    featureNames: [...plant.featureNames],
    running: plantRunningCondition(plant),
  };
}
