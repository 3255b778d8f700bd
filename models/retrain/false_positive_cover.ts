// What operators' false-positive verdicts call normal: the injected anomalies the gate no longer counts as missed.
import type { AnomalyKind } from "../signal/mod.ts";
import type { InjectedEvent } from "./inject.ts";

/** The rule, as the report states it. */
export const COVER_RULE =
  "an injected spike, level shift, drift or noise burst is not counted, for either model, when its readings stay " +
  "no further from the sensor's clean median than readings of incidents operators judged false positive " +
  "went (the candidate learnt those as normal); stuck sensors, larger events and other sensors still count";

/** A sensor that incidents judged false positive took further from its level than its clean frames ever went. */
export interface JudgedReach {
  feature: number;
  /** Farthest a clean training reading lay from the sensor's clean median, in sensor std. */
  clean: number;
  /** Farthest a reading of a false-positive incident lay from it: operators called that normal. */
  judgedNormal: number;
}

/** The sensors operators' verdicts widened, and the level and unit their reach is measured from. */
export interface FalsePositiveCover {
  sensors: JudgedReach[];
  /** Per sensor: median of the clean training readings, and the unit (the injections' std). */
  median: Float64Array;
  std: Float64Array;
}

/**
 * Kinds whose anomaly is a distance from the sensor's level. A stuck sensor is about stillness: a
 * verdict on an excursion says nothing about it, so stuck events always count.
 */
const DISTANCE_KINDS: ReadonlySet<AnomalyKind> = new Set([
  "spike",
  "level_shift",
  "drift",
  "noise_burst",
]);

/**
 * Per sensor, how far from its clean median (in `std`) the training series' clean rows and its
 * false-positive rows (`falsePositive[t] === 1`) went; the sensors whose false-positive rows went
 * further are the ones operators' verdicts widened. Non-finite readings are ignored.
 */
export function falsePositiveCover(
  train: { values: Float32Array; nFrames: number; falsePositive: Uint8Array },
  std: Float64Array,
): FalsePositiveCover {
  const F = std.length;
  const T = train.nFrames;
  const median = new Float64Array(F);
  const sensors: JudgedReach[] = [];
  // The usual case: no verdict let anything in, nothing to measure.
  if (!train.falsePositive.includes(1)) return { sensors, median, std };
  const column = new Float64Array(T);
  for (let f = 0; f < F; f++) {
    let n = 0;
    for (let t = 0; t < T; t++) {
      const x = train.values[t * F + f];
      if (!train.falsePositive[t] && Number.isFinite(x)) column[n++] = x;
    }
    const clean = column.subarray(0, n).sort();
    median[f] = n ? clean[n >> 1] : 0;
    let cleanReach = 0;
    let judgedNormal = 0;
    for (let t = 0; t < T; t++) {
      const d = Math.abs(train.values[t * F + f] - median[f]) / std[f];
      if (!Number.isFinite(d)) continue;
      if (train.falsePositive[t]) judgedNormal = Math.max(judgedNormal, d);
      else cleanReach = Math.max(cleanReach, d);
    }
    if (judgedNormal > cleanReach) sensors.push({ feature: f, clean: cleanReach, judgedNormal });
  }
  return { sensors, median, std };
}

/**
 * The verdict-widened reach that covers `event`, or `undefined` when the gate must still count
 * it. An event is covered when it is a distance kind on a sensor operators' false positives
 * widened, and none of its readings lies further from the sensor's clean median than a reading
 * they judged normal. Distance, not direction: the feature-wise models judge how far a sensor is
 * from its level, so a candidate that learnt the accepted excursion accepts its mirror image too,
 * and counting those as missed would hold every candidate that learnt a verdict. Larger events,
 * other sensors and stuck sensors still count.
 */
export function coveringReach(
  event: InjectedEvent,
  cover: FalsePositiveCover,
): JudgedReach | undefined {
  if (!DISTANCE_KINDS.has(event.spec.kind)) return undefined;
  const [f] = event.spec.features;
  const reach = cover.sensors.find((s) => s.feature === f);
  if (!reach) return undefined;
  const end = Math.min(event.frames.length, event.start + event.spec.duration);
  for (let t = event.start; t < end; t++) {
    const d = Math.abs(event.frames[t][f] - cover.median[f]) / cover.std[f];
    if (!(d <= reach.judgedNormal)) return undefined;
  }
  return reach;
}

/** Per verdict-widened sensor: its reach, and the injected events left out on it by kind. */
export interface LeftOutSensor {
  feature_idx: number;
  clean_std: number;
  judged_normal_std: number;
  events: number;
  by_kind: Partial<Record<AnomalyKind, number>>;
}

/** Splits `events` into those the gate counts and those {@link coveringReach} covers. */
export function leaveOutCovered(
  events: InjectedEvent[],
  cover: FalsePositiveCover,
): { counted: InjectedEvent[]; leftOut: { events: number; sensors: LeftOutSensor[] } } {
  const sensors = new Map<number, LeftOutSensor>(
    cover.sensors.map((r) => [
      r.feature,
      {
        feature_idx: r.feature,
        clean_std: Number(r.clean.toFixed(3)),
        judged_normal_std: Number(r.judgedNormal.toFixed(3)),
        events: 0,
        by_kind: {},
      },
    ]),
  );
  const counted: InjectedEvent[] = [];
  for (const event of events) {
    const reach = coveringReach(event, cover);
    if (!reach) {
      counted.push(event);
      continue;
    }
    const s = sensors.get(reach.feature)!;
    s.events++;
    s.by_kind[event.spec.kind] = (s.by_kind[event.spec.kind] ?? 0) + 1;
  }
  return {
    counted,
    leftOut: { events: events.length - counted.length, sensors: [...sensors.values()] },
  };
}

/** Verdict-widened sensors the report lists by name at most (a verdict on a plant-wide upset widens thousands). */
export const LISTED_WIDENED_MAX = 50;

/**
 * The report's list of verdict-widened sensors, named: every one that left an injected event out,
 * then the most widened others (judged-normal reach beyond the clean one), up to
 * {@link LISTED_WIDENED_MAX} in all, in sensor order; `widened`: how many there are.
 */
export function listedLeftOut(
  sensors: readonly LeftOutSensor[],
  featureNames: readonly string[],
): { widened: number; sensors: (LeftOutSensor & { feature: string })[] } {
  const widening = (s: LeftOutSensor) => s.judged_normal_std - s.clean_std;
  const listed = [...sensors]
    .sort((a, b) => Number(b.events > 0) - Number(a.events > 0) || widening(b) - widening(a))
    .slice(0, Math.max(LISTED_WIDENED_MAX, sensors.filter((s) => s.events > 0).length))
    .sort((a, b) => a.feature_idx - b.feature_idx);
  return {
    widened: sensors.length,
    sensors: listed.map((s) => ({ ...s, feature: featureNames[s.feature_idx] })),
  };
}
