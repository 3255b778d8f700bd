// Whether a stream its running condition calls stopped still reads as a running machine: the sign of a dead running-condition sensor.
import type { ModelMetadata } from "../../contracts/model.ts";

/** What judging needs of the model: its sensors, condition, typical ranges, running levels, window. */
export type ReadsRunningMeta = Pick<ModelMetadata, "feature_names" | "running"> &
  Partial<Pick<ModelMetadata, "typical" | "baseline" | "window_size">>;

/** A frame reads as running when at least this share of the judged sensors is in its typical range ... */
export const IN_RANGE_SHARE = 0.9;
/** ... and at least this share of the sampled sensors moved since the stream's previous frame. */
export const MOVING_SHARE = 0.5;
/** ... and the stop is in doubt once this share of its last frames ({@link doubtFrames}) read so. */
export const DOUBT_SHARE = 0.8;
/** Sensors sampled for movement (evenly spaced), so a stream's state stays small. */
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
  /** Share of the judged sensors in their typical (running) range in the latest frame. */
  in_range: number;
}

/** The sensors a model's frames are judged on, and the moving sample among them. */
export interface JudgedSensors {
  /** Features with a typical range in the sensor's units: neither the condition's nor a running level's. */
  judged: Int32Array;
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
    judged: Int32Array.from(judged),
    sampled,
    low: typical.low,
    high: typical.high,
    sensor: running.feature,
    frames: doubtFrames(meta.window_size),
  };
}

/**
 * One stopped stream's recent frames: whether each read as running (most of its sensors in their
 * running range and moving). A machine that really stopped leaves its running range (flows,
 * currents, speeds fall) or stops moving (a feed that holds its last readings); a machine whose
 * condition sensor died keeps both, and its stop is in doubt.
 */
export class StopDoubt {
  readonly #ring: Uint8Array;
  readonly #prev: Float64Array;
  #filled = 0;
  #at = 0;
  #reads = 0;
  #hasPrev = false;
  /** Frame time of each ring slot, to say since when the stop is in doubt. */
  readonly #times: Float64Array;
  #inRange = 0;
  #doubted = false;
  #since = 0;

  readonly sensors: JudgedSensors;

  constructor(sensors: JudgedSensors) {
    this.sensors = sensors;
    this.#ring = new Uint8Array(sensors.frames);
    this.#times = new Float64Array(sensors.frames);
    this.#prev = new Float64Array(sensors.sampled.length);
  }

  /** Judges one stopped frame; true when the stop has just come into doubt. */
  observe(timestamp: number, values: ArrayLike<number>): boolean {
    const { judged, sampled, low, high } = this.sensors;
    let inside = 0;
    for (let i = 0; i < judged.length; i++) {
      const f = judged[i];
      const x = values[f];
      if (x >= low[f] && x <= high[f]) inside++;
    }
    let moved = 0;
    for (let i = 0; i < sampled.length; i++) {
      const x = values[sampled[i]];
      if (this.#hasPrev && x !== this.#prev[i] && !(Number.isNaN(x) && Number.isNaN(this.#prev[i])))
        moved++;
      this.#prev[i] = x;
    }
    const hadPrev = this.#hasPrev;
    this.#hasPrev = true;
    this.#inRange = inside / judged.length;
    const reads =
      hadPrev && this.#inRange >= IN_RANGE_SHARE && moved / sampled.length >= MOVING_SHARE ? 1 : 0;
    const n = this.#ring.length;
    if (this.#filled === n) this.#reads -= this.#ring[this.#at];
    else this.#filled++;
    this.#ring[this.#at] = reads;
    this.#times[this.#at] = timestamp;
    this.#reads += reads;
    this.#at = (this.#at + 1) % n;
    const was = this.#doubted;
    this.#doubted = this.#filled === n && this.#reads >= DOUBT_SHARE * n;
    // The stretch that reads as running began with the ring's oldest frame.
    if (this.#doubted && !was) this.#since = this.#times[this.#at];
    return this.#doubted && !was;
  }

  /** The doubt as `/stats` lists it, or `undefined` while the stop looks real. */
  get doubt(): ReadsRunning | undefined {
    if (!this.#doubted) return undefined;
    return {
      since: new Date(this.#since).toISOString(),
      sensor: this.sensors.sensor,
      in_range: Math.round(this.#inRange * 1000) / 1000,
    };
  }
}
