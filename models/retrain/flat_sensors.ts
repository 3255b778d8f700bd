// Sensors a candidate must not learn from: flat through its training stretch where the active version saw them vary, stuck for part of it, or non-finite.
import type { ModelMetadata } from "../../contracts/model.ts";
import { readInitializers } from "../onnx/builder.ts";

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

/**
 * Per sensor, whether a model checks it for being stuck: its `quiet` statistic is on (a statistic
 * that is off has scoreA 0 and scoreB -1 in its calibration rows, `[nStats, F]`). Null for a model
 * without a quiet statistic (the linear kind).
 */
export function stuckCheckOf(
  tails: { scoreA: Float32Array; scoreB: Float32Array },
  statistics: readonly string[] | undefined,
  nFeatures: number,
): Uint8Array | null {
  const i = statistics?.indexOf("quiet") ?? -1;
  if (i < 0 || tails.scoreA.length < (i + 1) * nFeatures) return null;
  const a = tails.scoreA.subarray(i * nFeatures, (i + 1) * nFeatures);
  const b = tails.scoreB.subarray(i * nFeatures, (i + 1) * nFeatures);
  return Uint8Array.from(a, (x, f) => (x === 0 && b[f] === -1 ? 0 : 1));
}

/**
 * The sensors a model checks for being stuck on their raw readings: {@link stuckCheckOf} less the
 * sensors it judges against a running level (metadata `baseline`), whose check looked at their
 * deviation from that level, which never repeats exactly, so a raw repeat tells nothing there (a
 * quantised sensor the active version followed by its level repeats all the time).
 */
export function rawStuckCheck(
  check: Uint8Array | null,
  meta: Pick<ModelMetadata, "baseline">,
): Uint8Array | null {
  if (!check) return null;
  const raw = check.slice();
  for (const f of meta.baseline?.features ?? []) raw[f] = 0;
  return raw;
}

/** {@link stuckCheckOf} read from a graph's calibration initialisers (`scoreA_<i>`, `scoreB_<i>`). */
export function stuckDetection(
  onnx: Uint8Array,
  meta: Pick<ModelMetadata, "n_features" | "statistics">,
): Uint8Array | null {
  const i = meta.statistics?.indexOf("quiet") ?? -1;
  if (i < 0) return null;
  const tensors = readInitializers(onnx);
  const a = tensors.get(`scoreA_${i}`)?.data;
  const b = tensors.get(`scoreB_${i}`)?.data;
  const F = meta.n_features;
  if (!a || !b || a.length !== F || b.length !== F) return null;
  return stuckCheckOf({ scoreA: a, scoreB: b }, ["quiet"], F);
}

/**
 * A sensor stuck in more than this share of the training frames is not cut out (it would take
 * the history with it): the flat-line check and the gate's `stuckDetection` criterion hold the
 * candidate instead, naming it.
 */
export const STUCK_MAX_SHARE = 0.5;

/**
 * Frames a reading must be held, exactly, to count as stuck: a whole window of the default size
 * (5) sitting still. A single repeat is not: readings sent with 7 significant digits (the
 * simulator's JSON) or by a historian repeat now and then by coincidence, measured on `npm
 * start`'s plant as one or two repeats in 2,000 frames on about 700 of its 25,000 sensors.
 */
export const STUCK_MIN_FRAMES = 5;

/** A sensor whose stuck frames were cut out of the training series, or too many to cut. */
export interface StuckSensor {
  feature: number;
  name: string;
  /** Training frames in which it held a reading for at least {@link STUCK_MIN_FRAMES} frames. */
  frames: number;
  /** `left_out`: those frames were cut out; `kept`: stuck for most of the series, see above. */
  action: "left_out" | "kept";
}

/**
 * Training frames in which a sensor the active version checks for being stuck on its raw readings
 * (`quietOn`, from {@link rawStuckCheck}) holds one reading exactly for {@link STUCK_MIN_FRAMES}
 * frames or more. Such a sensor is continuous (it did not sit still in the active version's
 * training, or its quiet statistic would be off), so a held reading is a stuck instrument;
 * trained on, it switches the candidate's stuck check off for it (fit_svdd.ts). `drop` marks the
 * frames to cut out of the training series for every sensor stuck in at most
 * {@link STUCK_MAX_SHARE} of it.
 *
 * @example stuckStretches(train, quietOn, names).sensors; // [{ name: "feature_3", frames: 600, action: "left_out" }]
 */
export function stuckStretches(
  train: { values: Float32Array; nFrames: number },
  quietOn: Uint8Array,
  featureNames: readonly string[],
): { drop: Uint8Array; dropped: number; sensors: StuckSensor[] } {
  const F = quietOn.length;
  const T = train.nFrames;
  const v = train.values;
  // Per sensor, the frame its current held reading started at; a run ends at a change or at T.
  const start = new Int32Array(F);
  const frames = new Int32Array(F);
  const runs: { f: number; from: number; to: number }[] = [];
  const close = (f: number, end: number) => {
    if (end - start[f] >= STUCK_MIN_FRAMES) {
      runs.push({ f, from: start[f], to: end });
      frames[f] += end - start[f];
    }
  };
  for (let t = 1; t < T; t++) {
    const row = t * F;
    for (let f = 0; f < F; f++) {
      if (!quietOn[f] || v[row + f] === v[row - F + f]) continue;
      close(f, t);
      start[f] = t;
    }
  }
  for (let f = 0; f < F; f++) if (quietOn[f]) close(f, T);
  const sensors: StuckSensor[] = [];
  for (let f = 0; f < F; f++) {
    if (frames[f] === 0) continue;
    const action = frames[f] > STUCK_MAX_SHARE * T ? "kept" : "left_out";
    sensors.push({ feature: f, name: featureNames[f], frames: frames[f], action });
  }
  const drop = new Uint8Array(T);
  const cut = new Set(sensors.filter((x) => x.action === "left_out").map((x) => x.feature));
  for (const r of runs) if (cut.has(r.f)) drop.fill(1, r.from, r.to);
  let dropped = 0;
  for (const d of drop) dropped += d;
  return { drop, dropped, sensors };
}

/**
 * Sensors the active version checks for being stuck and the candidate does not, split by why:
 * `stuck`, those that held a reading in the training series where it was not cut out (a stuck
 * sensor learnt as normal: the gate's `stuckDetection` criterion), and `otherwise`, those whose
 * check the training rule dropped for quantised readings or a still normal window
 * (fit_svdd.ts, `QUANTISED_ZERO_SHARE`), reported only.
 */
export function stuckDetectionLost(
  active: Uint8Array | null,
  candidate: Uint8Array | null,
  featureNames: readonly string[],
  stuck: readonly StuckSensor[] = [],
): { stuck: { feature: number; name: string }[]; otherwise: { feature: number; name: string }[] } {
  const out = {
    stuck: [] as { feature: number; name: string }[],
    otherwise: [] as { feature: number; name: string }[],
  };
  if (!active || !candidate) return out;
  const kept = new Set(stuck.filter((x) => x.action === "kept").map((x) => x.feature));
  for (let f = 0; f < active.length; f++) {
    if (!active[f] || candidate[f]) continue;
    (kept.has(f) ? out.stuck : out.otherwise).push({ feature: f, name: featureNames[f] });
  }
  return out;
}

/**
 * The training series without the frames {@link stuckStretches} marks, and what it found; the
 * series as it was when nothing is cut (runs are concatenated already, as training reads them).
 */
export function cutStuckFrames<
  T extends { values: Float32Array; nFrames: number; falsePositive: Uint8Array },
>(
  train: T,
  quietOn: Uint8Array | null,
  featureNames: readonly string[],
): { train: T; stuck: ReturnType<typeof stuckStretches> | null } {
  if (!quietOn) return { train, stuck: null };
  const stuck = stuckStretches(train, quietOn, featureNames);
  if (stuck.dropped === 0) return { train, stuck };
  const F = quietOn.length;
  const kept = train.nFrames - stuck.dropped;
  const values = new Float32Array(kept * F);
  const falsePositive = new Uint8Array(kept);
  let row = 0;
  for (let t = 0; t < train.nFrames; t++) {
    if (stuck.drop[t]) continue;
    values.set(train.values.subarray(t * F, (t + 1) * F), row * F);
    falsePositive[row++] = train.falsePositive[t];
  }
  return { train: { ...train, values, nFrames: kept, falsePositive }, stuck };
}
