// Whether a stream its running condition calls stopped still reads as a running machine: the sign of a dead running-condition sensor.
import type { ModelMetadata } from "../../contracts/model.ts";

/** What judging needs of the model: its sensors, condition, typical ranges, running levels, window. */
export type ReadsRunningMeta = Pick<ModelMetadata, "feature_names" | "running"> &
  Partial<Pick<ModelMetadata, "typical" | "baseline" | "window_size">>;

/** A frame moved when at least this share of the sampled sensors changed since the one before. */
export const MOVING_SHARE = 0.5;
/** The stop is in doubt only while this share of its last frames ({@link doubtFrames}) moved. */
export const DOUBT_SHARE = 0.8;
/**
 * The least drop of the share of sensors in their running range that tells a real stop (flows,
 * currents, speeds leave it): one sensor in a hundred; more where the counts are small.
 */
export const LEAST_DROP = 0.01;
/** The running share assumed for a stream not seen running: the typical range's 1st to 99th percentile. */
export const NOMINAL_SHARE = 0.98;
/** Sensors judged (evenly spaced): a stream's state and a frame's cost stay small. */
const SAMPLED = 256;
/** Fewer judged sensors than this say nothing. */
const MIN_JUDGED = 3;

/** Stopped frames judged together: three windows of the model, at least 30. */
export const doubtFrames = (windowSize = 1): number => Math.max(30, 3 * windowSize);

/** A stop in doubt, as `/stats` lists it beside the stream's `machine_off` entry. */
export interface ReadsRunning {
  /** The frame time from which the stretch that put the stop in doubt read as running (ISO). */
  since: string;
  /** The running condition's sensor, which says stopped. */
  sensor: string;
  /** Share of the judged sensors in their typical (running) range over that stretch. */
  in_range: number;
}

/** The sensors a model's frames are judged on. */
export interface JudgedSensors {
  /** Up to 256 features, evenly spaced, with a typical range in the sensor's units: neither the condition's nor a running level's. */
  sampled: Int32Array;
  low: readonly number[];
  high: readonly number[];
  sensor: string;
  frames: number;
}

/** The sensors of `meta` to judge with, or `undefined` when it cannot be judged (no condition, no ranges, too few sensors). */
export function judgedSensors(meta: ReadsRunningMeta): JudgedSensors | undefined {
  const { running, typical } = meta;
  if (!running || !typical) return undefined;
  const condition = meta.feature_names.indexOf(running.feature);
  const leveled = new Set(meta.baseline?.features ?? []);
  const judged: number[] = [];
  for (let f = 0; f < meta.feature_names.length; f++) {
    if (f !== condition && !leveled.has(f) && f < typical.low.length) judged.push(f);
  }
  if (judged.length < MIN_JUDGED) return undefined;
  const n = Math.min(SAMPLED, judged.length);
  const sampled = new Int32Array(n);
  for (let i = 0; i < n; i++) sampled[i] = judged[Math.floor((i * judged.length) / n)];
  return {
    sampled,
    low: typical.low,
    high: typical.high,
    sensor: running.feature,
    frames: doubtFrames(meta.window_size),
  };
}

/** The share of `sensors` in their typical range in `values`. O(256). */
export function inRangeShare(sensors: JudgedSensors, values: ArrayLike<number>): number {
  const { sampled, low, high } = sensors;
  let inside = 0;
  for (let i = 0; i < sampled.length; i++) {
    const f = sampled[i];
    const x = values[f];
    if (x >= low[f] && x <= high[f]) inside++;
  }
  return inside / sampled.length;
}

/**
 * A stream's share of sensors in their running range while it runs: a running mean over the last
 * {@link doubtFrames} or so of its running frames (fewer at its start), what a stop is held to.
 */
export class RunningShare {
  share = 0;
  frames = 0;

  add(share: number, horizon: number): void {
    this.frames = Math.min(this.frames + 1, horizon);
    this.share += (share - this.share) / this.frames;
  }
}

/**
 * One stopped stream's recent frames held to how it read while it ran. A machine that really
 * stops takes some of its sensors out of their running range (flows, currents, speeds fall; a
 * hundredth of them is enough) or stops moving (a feed that holds its last readings); a machine
 * whose condition's sensor died keeps as many in range as it did running, and moving, and its
 * stop is in doubt. Measurement noise moves a stopped plant's readings too, so the range decides
 * for a live feed; movement only rules out a frozen one.
 */
export class StopDoubt {
  readonly sensors: JudgedSensors;
  /** Each ring slot's share of sensors in range, and whether that frame moved. */
  readonly #shares: Float64Array;
  readonly #moved: Uint8Array;
  /** Frame time of each ring slot, to say since when the stop is in doubt. */
  readonly #times: Float64Array;
  readonly #prev: Float64Array;
  readonly #running: { share: number; frames: number };
  #filled = 0;
  #at = 0;
  #shareSum = 0;
  #movedCount = 0;
  #hasPrev = false;
  #doubted = false;
  #since = 0;

  /** `running`: how the stream read while it ran (none: the typical range's nominal share). */
  constructor(sensors: JudgedSensors, running?: RunningShare) {
    this.sensors = sensors;
    const n = sensors.frames;
    this.#shares = new Float64Array(n);
    this.#moved = new Uint8Array(n);
    this.#times = new Float64Array(n);
    this.#prev = new Float64Array(sensors.sampled.length);
    this.#running =
      running && running.frames > 0
        ? { share: running.share, frames: running.frames }
        : { share: NOMINAL_SHARE, frames: n };
  }

  /** Judges one stopped frame; true when the stop has just come into doubt. */
  observe(timestamp: number, values: ArrayLike<number>): boolean {
    const { sampled } = this.sensors;
    const share = inRangeShare(this.sensors, values);
    let changed = 0;
    for (let i = 0; i < sampled.length; i++) {
      const x = values[sampled[i]];
      const before = this.#prev[i];
      if (this.#hasPrev && x !== before && !(Number.isNaN(x) && Number.isNaN(before))) changed++;
      this.#prev[i] = x;
    }
    const moved = this.#hasPrev && changed / sampled.length >= MOVING_SHARE ? 1 : 0;
    this.#hasPrev = true;
    const n = this.#shares.length;
    if (this.#filled === n) {
      this.#shareSum -= this.#shares[this.#at];
      this.#movedCount -= this.#moved[this.#at];
    } else this.#filled++;
    this.#shares[this.#at] = share;
    this.#moved[this.#at] = moved;
    this.#times[this.#at] = timestamp;
    this.#shareSum += share;
    this.#movedCount += moved;
    this.#at = (this.#at + 1) % n;
    const was = this.#doubted;
    this.#doubted =
      this.#filled === n &&
      this.#movedCount >= DOUBT_SHARE * n &&
      this.#shareSum / n >= this.#running.share - this.#drop();
    // The stretch that reads as running began with the ring's oldest frame.
    if (this.#doubted && !was) this.#since = this.#times[this.#at];
    return this.#doubted && !was;
  }

  /**
   * The drop of the share in range that tells a real stop: {@link LEAST_DROP}, or three standard
   * errors of the difference between the two means where the counts are small (a few sensors, a
   * stream seen running for a few frames).
   */
  #drop(): number {
    const p = Math.min(NOMINAL_SHARE, Math.max(0.5, this.#running.share));
    const j = this.sensors.sampled.length;
    const se = Math.sqrt(
      p * (1 - p) * (1 / (this.#shares.length * j) + 1 / (this.#running.frames * j)),
    );
    return Math.max(LEAST_DROP, 3 * se);
  }

  /** The doubt as `/stats` lists it, or `undefined` while the stop looks real. */
  get doubt(): ReadsRunning | undefined {
    if (!this.#doubted) return undefined;
    return {
      since: new Date(this.#since).toISOString(),
      sensor: this.sensors.sensor,
      in_range: Math.round((this.#shareSum / this.#shares.length) * 1000) / 1000,
    };
  }
}
