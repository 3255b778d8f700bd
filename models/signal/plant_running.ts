// When the simulated plant runs: its drive sensor's reading, which falls to 0 when a machine stops.
import type { RunningCondition } from "../../contracts/running_condition.ts";
import type { Plant } from "./plant.ts";

/** Sensors considered for the drive, and how many of its standard deviations it sits from 0. */
const DRIVE_CANDIDATES = 16;
const DRIVE_MIN_RATIO = 50;

/**
 * The plant's drive sensor: among its first 16, the gaussian one whose running level sits the
 * most standard deviations away from 0 (at least 50), so that no normal reading and no injected
 * anomaly (at most 12 standard deviations) comes near the 0 a stopped machine reads. -1 when the
 * plant has none.
 */
export function plantDriveSensor(plant: Pick<Plant, "nFeatures" | "sensors">): number {
  const { level, std, family } = plant.sensors;
  let best = -1;
  let bestRatio = DRIVE_MIN_RATIO;
  for (let f = 0; f < Math.min(plant.nFeatures, DRIVE_CANDIDATES); f++) {
    const ratio = Math.abs(level[f]) / std[f];
    if (family[f] === 0 && ratio >= bestRatio) {
      best = f;
      bestRatio = ratio;
    }
  }
  return best;
}

/**
 * The simulated plant's running condition: its drive beyond a tenth of its running level
 * (`undefined` for a plant without a drive sensor). Models trained on the plant carry it.
 */
export function plantRunningCondition(
  plant: Pick<Plant, "nFeatures" | "featureNames" | "sensors">,
): RunningCondition | undefined {
  const f = plantDriveSensor(plant);
  if (f < 0) return undefined;
  const level = plant.sensors.level[f];
  const value = Number((level / 10).toPrecision(3));
  return { feature: plant.featureNames[f], op: level > 0 ? ">" : "<", value };
}

/**
 * A frame of a stopped machine: every sensor holds its last reading (instruments still report,
 * nothing moves) and the drive reads 0.
 */
export function stoppedFrame(
  plant: Pick<Plant, "nFeatures" | "sensors">,
  last: Float32Array,
  out = new Float32Array(last.length),
): Float32Array {
  out.set(last);
  const drive = plantDriveSensor(plant);
  if (drive >= 0) out[drive] = 0;
  return out;
}
