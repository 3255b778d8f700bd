// The simulated plant: one frame of raw readings per call, with scheduled, labelled anomalies.
import { defaultFeatureNames } from "../../contracts/model.ts";
import type { AnomalySpec } from "./anomaly.ts";
import { mixSeed, Rng } from "./prng.ts";
import { createSensorTable, type SensorTable } from "./sensors.ts";

/** Sensor configuration seed of the default plant (the committed models are trained on it). */
export const DEFAULT_PLANT_SEED = 20_251_124;
export const DEFAULT_N_FEATURES = 25_000;

export interface Plant {
  readonly nFeatures: number;
  readonly featureNames: readonly string[];
  /** Index of the next frame `next()` returns. */
  readonly frameIndex: number;
  /** Per-sensor description (levels, normal std = unit of anomaly magnitudes, families). */
  readonly sensors: SensorTable;
  /** One frame of raw sensor values; advances time. Writes into `out` when given. */
  next(out?: Float32Array): Float32Array;
  /** Schedules an anomaly (`start >= frameIndex`). */
  inject(spec: AnomalySpec): void;
  /** Ground truth: anomalies active at `frameIndex` (default: the frame last returned by `next()`). */
  activeAnomalies(frameIndex?: number): AnomalySpec[];
  /**
   * Ends the anomalies active in the frame `next()` last returned, for a frame its user could not
   * use: ground truth keeps each shortened to the frames before that one. Returns them so.
   */
  dropActive(): AnomalySpec[];
}

export interface PlantOptions {
  nFeatures?: number;
  /** Seed of the sensor configuration (which plant). Default `DEFAULT_PLANT_SEED`. */
  seed?: number;
  /** Seed of the noise realisation (which day of that plant). Default: `seed`. */
  noiseSeed?: number;
}

const HISTORY_LIMIT = 4096;
/** Largest finite float32: frames are `Float32Array`s, and a reading beyond it would store as ±Infinity. */
const FLOAT32_MAX = 3.4028234663852886e38;
const inFloat32 = (x: number) => Math.min(FLOAT32_MAX, Math.max(-FLOAT32_MAX, x));

/**
 * Creates a deterministic plant: same options, same frames, bit for bit.
 *
 * @example const plant = createPlant({ nFeatures: 1000 }); const frame = plant.next();
 */
export function createPlant(options: PlantOptions = {}): Plant {
  const n = options.nFeatures ?? DEFAULT_N_FEATURES;
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new RangeError(`'nFeatures' must be an integer 1..1000000, got ${n}`);
  }
  const seed = options.seed ?? DEFAULT_PLANT_SEED;
  const sensors = createSensorTable(n, seed);
  const rng = new Rng(mixSeed(options.noiseSeed ?? seed, 0x5eed));
  const ar = new Float64Array(n);
  for (let f = 0; f < n; f++) {
    ar[f] = (rng.normal() * sensors.innovStd[f]) / Math.sqrt(1 - sensors.phi[f] ** 2);
  }
  const last = new Float32Array(n);
  const values = new Float64Array(n);
  const held = new Map<AnomalySpec, Float64Array>();
  let scheduled: AnomalySpec[] = [];
  let active: AnomalySpec[] = [];
  const history: AnomalySpec[] = [];
  let frameIndex = 0;
  const featureNames = defaultFeatureNames(n);

  function heavyNoise(df: number): number {
    // Student-t with df 3..5, scaled to unit variance: z / sqrt(chi2_df / df).
    let chi2 = -2 * Math.log((1 - rng.uniform()) * (1 - rng.uniform()));
    if (df === 3) chi2 = -2 * Math.log(1 - rng.uniform()) + rng.normal() ** 2;
    else if (df === 5) chi2 += rng.normal() ** 2;
    return (rng.normal() / Math.sqrt(chi2 / df)) * Math.sqrt((df - 2) / df);
  }

  function advanceSchedule(i: number): void {
    while (scheduled.length > 0 && scheduled[0].start <= i) {
      const spec = scheduled.shift()!;
      active.push(spec);
      if (spec.kind === "stuck") {
        held.set(
          spec,
          Float64Array.from(spec.features, (f) => last[f]),
        );
      }
    }
    const still: AnomalySpec[] = [];
    for (const spec of active) {
      if (spec.start + spec.duration > i) still.push(spec);
      else {
        held.delete(spec);
        history.push(spec);
        if (history.length > HISTORY_LIMIT) history.shift();
      }
    }
    active = still;
  }

  function next(out?: Float32Array): Float32Array {
    const frame = out ?? new Float32Array(n);
    if (frame.length !== n)
      throw new RangeError(`'out' must hold ${n} values, got ${frame.length}`);
    const t = frameIndex;
    advanceSchedule(t);
    const { family, level, phi, innovStd, cycleAmp, cycleOmega, cyclePhase, tailDf } = sensors;
    for (let f = 0; f < n; f++) {
      const e = family[f] === 1 ? heavyNoise(tailDf[f]) : rng.normal();
      const a = phi[f] * ar[f] + innovStd[f] * e;
      ar[f] = a;
      const amp = cycleAmp[f];
      values[f] =
        level[f] + a + (amp === 0 ? 0 : amp * Math.sin(cycleOmega[f] * t + cyclePhase[f]));
    }
    for (const spec of active) applyAnomaly(spec, t);
    const { quantum } = sensors;
    for (let f = 0; f < n; f++) {
      const q = quantum[f];
      frame[f] = q === 0 ? values[f] : Math.round(values[f] / q) * q;
    }
    for (const spec of active) {
      if (spec.kind !== "stuck") continue;
      const h = held.get(spec)!;
      spec.features.forEach((f, k) => {
        frame[f] = h[k];
      });
    }
    last.set(frame);
    frameIndex++;
    return frame;
  }

  function applyAnomaly(spec: AnomalySpec, t: number): void {
    const { std } = sensors;
    const k = t - spec.start;
    for (const f of spec.features) {
      // Any finite magnitude makes a finite reading: a huge one saturates at the float32 limit
      // (bounded before the product, so a noise burst never multiplies Infinity by 0).
      const s = inFloat32(std[f] * spec.magnitude);
      if (spec.kind === "spike" || spec.kind === "level_shift") values[f] += s;
      else if (spec.kind === "drift") values[f] += (s * (k + 1)) / spec.duration;
      else if (spec.kind === "noise_burst") values[f] += s * rng.normal();
      values[f] = inFloat32(values[f]);
    }
  }

  function inject(spec: AnomalySpec): void {
    if (!Number.isInteger(spec.start) || spec.start < frameIndex) {
      throw new RangeError(`'start' must be an integer >= ${frameIndex}, got ${spec.start}`);
    }
    if (!Number.isInteger(spec.duration) || spec.duration < 1) {
      throw new RangeError(`'duration' must be a positive integer, got ${spec.duration}`);
    }
    if (!Number.isFinite(spec.magnitude)) {
      throw new RangeError(`'magnitude' must be finite, got ${spec.magnitude}`);
    }
    for (const f of spec.features) {
      if (!Number.isInteger(f) || f < 0 || f >= n) {
        throw new RangeError(`'features' must be integers 0..${n - 1}, got ${f}`);
      }
    }
    const copy = { ...spec, features: [...spec.features] };
    scheduled.push(copy);
    scheduled = scheduled.sort((a, b) => a.start - b.start);
  }

  function activeAnomalies(i: number = frameIndex - 1): AnomalySpec[] {
    const hit = (s: AnomalySpec) => s.start <= i && i < s.start + s.duration;
    return [...history, ...active, ...scheduled]
      .filter(hit)
      .map((s) => ({ ...s, features: [...s.features] }));
  }

  function dropActive(): AnomalySpec[] {
    const t = frameIndex - 1;
    const dropped = active;
    active = [];
    for (const spec of dropped) {
      held.delete(spec);
      spec.duration = t - spec.start;
      if (spec.duration === 0) continue;
      history.push(spec);
      if (history.length > HISTORY_LIMIT) history.shift();
    }
    return dropped.map((s) => ({ ...s, features: [...s.features] }));
  }

  return {
    nFeatures: n,
    featureNames,
    get frameIndex() {
      return frameIndex;
    },
    sensors,
    next,
    inject,
    activeAnomalies,
    dropActive,
  };
}
