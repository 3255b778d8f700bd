// Sensors a candidate must not learn from: flat through its training stretch where the active version saw them vary, or non-finite.
import type { ModelMetadata } from "../../contracts/model.ts";

/**
 * A sensor's 1st..99th-percentile spread in the training stretch must be at least this share of
 * the typical range the active version learnt for it. Below it, 98 % of the readings sit within a
 * hundredth of the sensor's learnt range: a stuck instrument, whose flat line the candidate would
 * learn as normal (and then never flag it stuck again).
 */
export const FLAT_SHARE = 0.01;

/** A sensor the candidate's training stretch cannot be trusted on. */
export interface SensorProblem {
  feature: number;
  name: string;
  problem: "flat" | "non_finite";
  /** Its 1st..99th-percentile spread in the training stretch (finite readings). */
  spread: number;
  /** The active version's typical range width (`typical.high - typical.low`), when it has one. */
  learnt: number | null;
  nonFinite: number;
}

/** What {@link sensorProblems} found, and whether the flat check could run. */
export interface SensorCheck {
  problems: SensorProblem[];
  /** Why sensors were not checked for flat lines (the active version keeps no typical range). */
  skipped?: string;
}

/** Same quantile as the training's typical range (models/featurewise/train.ts). */
const quantile = (sorted: Float64Array, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];

/**
 * Checks each sensor of `train` (row-major `[nFrames, n_features]`) against the active version's
 * per-sensor training statistics (`typical`: the 1st..99th percentile of its readings in its fit
 * part). A sensor is `flat` when its spread here is below {@link FLAT_SHARE} of that range while
 * that range is wider than float32 rounding (the active version saw it vary; a sensor that was
 * constant then may stay constant); `non_finite` when any reading is NaN or infinite.
 *
 * @example sensorProblems(train, activeMeta).problems; // [{ name: "feature_3", problem: "flat", ... }]
 */
export function sensorProblems(
  train: { values: Float32Array; nFrames: number },
  active: Pick<ModelMetadata, "n_features" | "feature_names" | "typical">,
): SensorCheck {
  const F = active.n_features;
  const T = train.nFrames;
  const typical = active.typical;
  const problems: SensorProblem[] = [];
  const column = new Float64Array(T);
  for (let f = 0; f < F; f++) {
    let n = 0;
    for (let t = 0; t < T; t++) {
      const x = train.values[t * F + f];
      if (Number.isFinite(x)) column[n++] = x;
    }
    const finite = column.subarray(0, n).sort();
    const spread = n ? quantile(finite, 0.99) - quantile(finite, 0.01) : 0;
    const learnt = typical ? typical.high[f] - typical.low[f] : null;
    const base = { feature: f, name: active.feature_names[f], spread, learnt, nonFinite: T - n };
    if (n < T) {
      problems.push({ ...base, problem: "non_finite" });
      continue;
    }
    if (!typical || learnt === null) continue;
    const rounding = Math.max(Math.abs(typical.low[f]), Math.abs(typical.high[f])) * 2 ** -20;
    if (learnt > rounding && spread < FLAT_SHARE * learnt)
      problems.push({ ...base, problem: "flat" });
  }
  return typical
    ? { problems }
    : {
        problems,
        skipped: "the active version keeps no typical range (trained before it existed)",
      };
}

/** One line per problem, naming the sensor, what is wrong, and why it matters. */
export function describeProblem(p: SensorProblem): string {
  const fmt = (x: number) => String(Number(x.toPrecision(4)));
  if (p.problem === "non_finite") {
    return `${p.name} (feature ${p.feature}): ${p.nonFinite} non-finite reading(s) in the training stretch`;
  }
  return (
    `${p.name} (feature ${p.feature}): flat in the training stretch (1st..99th percentile spread ${fmt(p.spread)}, ` +
    `under ${FLAT_SHARE * 100} % of the ${fmt(p.learnt ?? 0)} the active version learnt): a stuck sensor would be learnt as normal`
  );
}
