// Labelled anomaly kinds of the plant and a generator of realistic random anomalies.
import { Rng } from "./prng.ts";

export type AnomalyKind = "spike" | "level_shift" | "drift" | "noise_burst" | "stuck";
export const ANOMALY_KINDS: readonly AnomalyKind[] = [
  "spike",
  "level_shift",
  "drift",
  "noise_burst",
  "stuck",
];

/**
 * One injected anomaly. `magnitude` is in units of each sensor's normal standard deviation; its
 * sign gives the direction of spikes, shifts and drifts (a drift reaches `magnitude` at its last
 * frame); for a noise burst it is the standard deviation of the added noise; ignored for stuck.
 */
export interface AnomalySpec {
  kind: AnomalyKind;
  features: number[];
  start: number;
  duration: number;
  magnitude: number;
}

/** Default size ranges per kind: [min, max] magnitude (in sensor std) and duration (frames). */
export const ANOMALY_DEFAULTS: Readonly<
  Record<AnomalyKind, { magnitude: [number, number]; duration: [number, number] }>
> = {
  spike: { magnitude: [8, 12], duration: [1, 3] },
  level_shift: { magnitude: [6, 10], duration: [60, 300] },
  drift: { magnitude: [8, 12], duration: [60, 300] },
  noise_burst: { magnitude: [3, 6], duration: [20, 120] },
  stuck: { magnitude: [0, 0], duration: [60, 300] },
};

export interface RandomAnomalyOptions {
  kind?: AnomalyKind;
  /** First affected frame (default: the plant's next frame). */
  start?: number;
  /** Affected features (default: 1..maxFeatures distinct random sensors). */
  features?: number[];
  /** Upper bound on the random number of affected features (default 4). */
  maxFeatures?: number;
  magnitude?: number;
  duration?: number;
}

/**
 * Draws an anomaly with realistic default size for its kind (see `ANOMALY_DEFAULTS`).
 *
 * @example plant.inject(randomAnomaly(7, plant, { kind: "spike" }));
 */
export function randomAnomaly(
  rngOrSeed: Rng | number,
  plant: { readonly nFeatures: number; readonly frameIndex: number },
  options: RandomAnomalyOptions = {},
): AnomalySpec {
  const rng = typeof rngOrSeed === "number" ? new Rng(rngOrSeed) : rngOrSeed;
  const kind = options.kind ?? ANOMALY_KINDS[rng.int(ANOMALY_KINDS.length)];
  const d = ANOMALY_DEFAULTS[kind];
  let features = options.features;
  if (!features) {
    const maxFeatures = Math.min(options.maxFeatures ?? 4, plant.nFeatures);
    const count = 1 + rng.int(maxFeatures);
    const chosen = new Set<number>();
    while (chosen.size < count) chosen.add(rng.int(plant.nFeatures));
    features = [...chosen].sort((a, b) => a - b);
  }
  const sign = kind === "noise_burst" || kind === "stuck" || rng.uniform() < 0.5 ? 1 : -1;
  const magnitude = options.magnitude ?? sign * rng.range(d.magnitude[0], d.magnitude[1]);
  const duration = options.duration ?? d.duration[0] + rng.int(d.duration[1] - d.duration[0] + 1);
  return { kind, features, start: options.start ?? plant.frameIndex, duration, magnitude };
}
