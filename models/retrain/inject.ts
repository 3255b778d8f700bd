// Injects the plant generator's anomaly kinds into recorded frames: what the gate checks both models still find.
import {
  ANOMALY_KINDS,
  type AnomalyKind,
  type AnomalySpec,
  Rng,
  randomAnomaly,
} from "../signal/mod.ts";
import type { Run } from "./history_data.ts";

/** Frames before an injected anomaly, so windows and running levels are settled when it starts. */
export const LEAD_FRAMES = 100;

/** Frames kept after an injected anomaly beyond one window, so the windows that may find it are all scored. */
const TAIL_BEYOND_WINDOW = 5;

/**
 * The shortest recent run anomalies can be injected into for a model of `windowSize`:
 * `LEAD_FRAMES` + 10 frames of anomaly + `windowSize + 5` after it (120 at the default window
 * of 5). `HISTORY_RUN_FRAMES` below it, or a line that stops more often, leaves the gate nothing
 * to inject into (contracts/config.ts refuses it for the default window).
 */
export function injectionRunFrames(windowSize: number): number {
  return LEAD_FRAMES + 10 + windowSize + TAIL_BEYOND_WINDOW;
}

/** One injected anomaly on a copy of a recent run: frames `start .. start + duration` carry it. */
export interface InjectedEvent {
  spec: AnomalySpec;
  /** The affected copy of the run's frames, from `LEAD_FRAMES` before the anomaly. */
  frames: Float32Array[];
  timestamps: number[];
  /** Index in `frames` of the first affected frame. */
  start: number;
}

/** Robust per-sensor standard deviation (1.4826 MAD) of the training series: the unit of magnitudes. */
export function sensorStd(values: Float32Array, nFrames: number, nFeatures: number): Float64Array {
  const std = new Float64Array(nFeatures);
  const column = new Float64Array(nFrames);
  for (let f = 0; f < nFeatures; f++) {
    for (let t = 0; t < nFrames; t++) column[t] = values[t * nFeatures + f];
    column.sort();
    const median = column[nFrames >> 1];
    for (let t = 0; t < nFrames; t++) column[t] = Math.abs(column[t] - median);
    column.sort();
    std[f] = Math.max(1.4826 * column[nFrames >> 1], 1e-6 * Math.abs(median), 1e-9);
  }
  return std;
}

/**
 * Adds `spec` to the frames from `start` as the plant generator does (models/signal/plant.ts):
 * spike and level shift add `magnitude` std, drift ramps to it, a noise burst adds noise of
 * `magnitude` std, stuck holds the reading before it.
 */
export function applyAnomaly(
  frames: Float32Array[],
  start: number,
  spec: AnomalySpec,
  std: Float64Array,
  rng: Rng,
): void {
  for (let k = 0; k < spec.duration && start + k < frames.length; k++) {
    const frame = frames[start + k];
    for (const f of spec.features) {
      const s = std[f] * spec.magnitude;
      if (spec.kind === "spike" || spec.kind === "level_shift") frame[f] += s;
      else if (spec.kind === "drift") frame[f] += (s * (k + 1)) / spec.duration;
      else if (spec.kind === "noise_burst") frame[f] += s * rng.normal();
      else if (spec.kind === "stuck") frame[f] = frames[start - 1][f];
    }
  }
}

/**
 * `perKind` events of every kind, each on its own copy of a slice of a recent run long enough
 * for it (a duration longer than the run allows is shortened), on one sensor: sensors are taken
 * in turn (from a seeded offset), so with fewer sensors than events every sensor gets each kind.
 * Returns none when no recent run has {@link injectionRunFrames} frames: the gate then holds the
 * candidate, its detection not measured (gate.ts `decide`).
 */
export function injectEvents(
  runs: Run[],
  std: Float64Array,
  options: { perKind: number; seed: number; windowSize: number },
): InjectedEvent[] {
  const rng = new Rng(options.seed);
  const F = std.length;
  const tail = options.windowSize + TAIL_BEYOND_WINDOW;
  const long = runs.filter((r) => r.frames.length >= injectionRunFrames(options.windowSize));
  const events: InjectedEvent[] = [];
  if (long.length === 0) return events;
  const offset = rng.int(F);
  ANOMALY_KINDS.forEach((kind: AnomalyKind, k) => {
    for (let i = 0; i < options.perKind; i++) {
      const run = long[rng.int(long.length)];
      const room = run.frames.length - LEAD_FRAMES - tail;
      const feature = (offset + i + k) % F;
      const drawn = randomAnomaly(
        rng,
        { nFeatures: F, frameIndex: 0 },
        { kind, features: [feature] },
      );
      const duration = Math.min(drawn.duration, room);
      const first = rng.int(run.frames.length - (LEAD_FRAMES + duration + tail) + 1);
      const slice = run.frames.slice(first, first + LEAD_FRAMES + duration + tail);
      const frames = slice.map((f) => Float32Array.from(f.values));
      const spec = { ...drawn, duration, start: LEAD_FRAMES };
      applyAnomaly(frames, LEAD_FRAMES, spec, std, rng);
      events.push({ spec, frames, timestamps: slice.map((f) => f.timestamp), start: LEAD_FRAMES });
    }
  });
  return events;
}
