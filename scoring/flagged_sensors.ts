// Finds a scored window's flagged sensors and ranks them by severity: shared by the engine and the evaluation.
import type { ModelMetadata } from "../contracts/model.ts";
import type { ObservedWindow, SensorEvidence } from "./incident_tracker.ts";

/** One scored window's rows: `[n_features]` slices of the model's outputs. */
export interface ScoredRow {
  scores: ArrayLike<number>;
  /** The model's severity output; absent: derived from the score (see `severityScale`). */
  severity?: ArrayLike<number>;
  /** The model's statistic index output; absent: -1 ("score"). */
  statistic?: ArrayLike<number>;
}

/**
 * Severity per unit of score for a model without a severity output. Our calibrated scores map
 * a tail probability p to `score = threshold * log(p) / log(p_target)`, so
 * `-log10 p = score * -log10(p_target) / threshold`: exact below the clip at 1, a floor above.
 * A model whose metadata does not say how it calibrates gets severity = score.
 */
export function severityScale(meta: Pick<ModelMetadata, "score">): number {
  const c = meta.score.calibration;
  const p = Number(c.p_target_per_statistic ?? c.p_target);
  const threshold = Number(c.threshold);
  if (p > 0 && p < 1 && threshold > 0 && threshold <= 1) return -Math.log10(p) / threshold;
  return 1;
}

/**
 * Writes every sensor of `row` whose score reaches `threshold` into `out` (from `outStart`),
 * the `maxFeatures` most severe first in descending severity (ties: score, then index), the
 * rest after them, unordered. Returns how many were flagged. Allocates nothing when none is,
 * which is the common case.
 */
export function rankFlagged(
  row: ScoredRow,
  nFeatures: number,
  threshold: number,
  scale: number,
  out: Int32Array,
  outStart = 0,
  maxFeatures = Number.POSITIVE_INFINITY,
): number {
  const { scores, severity } = row;
  // Compare in float32, as the graph computed: a score of float32(0.9) meets a 0.9 threshold.
  const cut = Math.fround(threshold);
  let count = 0;
  // At or above the cut, or NaN (`!(s < cut)`, one comparison): the graph's arithmetic gives NaN
  // only when it overflows on a reading far past anything it was trained on (from about 1e18
  // standard deviations: an instrument at its overload value, 9.9e37, or at the float32 limit),
  // the plainest fault there is, not a reason to stay silent.
  for (let f = 0; f < nFeatures; f++) if (!(scores[f] < cut)) out[outStart + count++] = f;
  if (count <= 1) return count;
  const sev = severity
    ? (f: number) =>
        severity[f] >= Number.NEGATIVE_INFINITY ? severity[f] : unscoredSeverity(scores[f])
    : (f: number) => (scores[f] >= Number.NEGATIVE_INFINITY ? scores[f] * scale : UNSCORED);
  const rank = (a: number, b: number) => sev(b) - sev(a) || scores[b] - scores[a] || a - b;
  const part = out.subarray(outStart, outStart + count);
  if (count > maxFeatures) {
    // Thousands flagged (noise, a broken feed): find the k-th severity with a plain numeric
    // sort (no comparator calls), bring the sensors at or above it forward, order only those.
    // In doubles: `scores * scale` rounded to float32 could land above a sensor's own severity,
    // leaving the k-th and its ties behind the unsorted tail.
    const keys = new Float64Array(count);
    for (let j = 0; j < count; j++) keys[j] = sev(part[j]);
    keys.sort();
    const kth = keys[count - maxFeatures];
    let front = 0;
    for (let j = 0; j < count; j++) {
      const f = part[j];
      if (sev(f) >= kth) {
        part[j] = part[front];
        part[front++] = f;
      }
    }
    part.subarray(0, front).sort(rank);
    return count;
  }
  part.sort(rank);
  return count;
}

/** Cap of a reported severity: -log10 of the smallest double is about 324. */
export const MAX_SEVERITY = 1000;

/** How a sensor the graph could not score (NaN: it overflowed) ranks: above every scored one. */
const UNSCORED = Number.POSITIVE_INFINITY;

/** A NaN severity: of a sensor that could not be scored, the highest; otherwise none. */
const unscoredSeverity = (score: number) => (score >= Number.NEGATIVE_INFINITY ? 0 : UNSCORED);

// Scores are float32 (about 7 significant digits): six decimals print them faithfully.
export const cleanNumber = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * The evidence of one flagged sensor `f`: score, severity, statistic, its window of raw
 * readings (oldest first) and, for a sensor with a running level, that level.
 */
export function sensorEvidence(
  row: ScoredRow,
  f: number,
  scale: number,
  window: readonly number[],
  level = Number.NaN,
): SensorEvidence {
  const s = row.scores[f];
  // NaN: the graph overflowed on this sensor's readings (see `rankFlagged`): as anomalous as it gets.
  const unscored = !(s >= Number.NEGATIVE_INFINITY);
  const score = s >= 1 || unscored ? 1 : s <= 0 ? 0 : cleanNumber(s);
  const given = row.severity ? row.severity[f] : s * scale;
  const raw = given >= Number.NEGATIVE_INFINITY ? given : unscoredSeverity(s);
  // p = 0 exactly (+Infinity) ranks above everything but must stay a finite JSON number.
  const severity = raw > MAX_SEVERITY ? MAX_SEVERITY : raw > 0 ? cleanNumber(raw) : 0;
  const statistic = row.statistic ? Number(row.statistic[f]) : -1;
  const e: SensorEvidence = { feature_idx: f, score, severity, statistic, window };
  if (Number.isFinite(level)) e.level = level;
  return e;
}

/**
 * Builds the tracker's view of one scored window from whole rows, as the evaluation does:
 * `windowValues` is the `[window_size, n_features]` input, row-major.
 *
 * @example tracker.observe(observedWindow("plant", t, row, windowValues, { nFeatures, windowSize, threshold, scale, maxFeatures }));
 */
export function observedWindow(
  streamId: string,
  timestamp: number,
  row: ScoredRow,
  windowValues: ArrayLike<number>,
  o: {
    nFeatures: number;
    windowSize: number;
    threshold: number;
    scale: number;
    maxFeatures: number;
  },
): ObservedWindow {
  const out = new Int32Array(o.nFeatures);
  const count = rankFlagged(row, o.nFeatures, o.threshold, o.scale, out, 0, o.maxFeatures);
  const flagged = out.subarray(0, count);
  const evidence: SensorEvidence[] = [];
  for (let j = 0; j < Math.min(count, o.maxFeatures); j++) {
    const f = flagged[j];
    const window: number[] = [];
    for (let t = 0; t < o.windowSize; t++) window.push(windowValues[t * o.nFeatures + f]);
    evidence.push(sensorEvidence(row, f, o.scale, window));
  }
  return { streamId, timestamp, flagged, evidence };
}
