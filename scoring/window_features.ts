// What the model sees of a stream: its sliding window of frames, running levels applied, and the readings as they arrived.
import type { ModelMetadata } from "../contracts/model.ts";
import { LevelBaseline, type LevelBaselineSpec, parseLevelBaseline } from "./level_baseline.ts";

export interface WindowShapeOptions {
  /** Frames per window (the model's `window_size`). */
  windowSize: number;
  /** Values per frame (the model's feature count). */
  frameSize: number;
  /** The model's running levels (metadata `baseline`): applied to each stream's frames in order. */
  baseline?: LevelBaselineSpec;
}

/**
 * The shape of a model's windows, checked once: window size, feature count and which sensors
 * follow a running level. Every stream's {@link StreamFeatures} shares it.
 */
export class WindowShape {
  readonly windowSize: number;
  readonly frameSize: number;
  /** The running levels, or undefined when no sensor follows one. */
  readonly baseline: LevelBaselineSpec | undefined;
  /** Per feature, its position among the baseline sensors, or -1 (empty without a baseline). */
  readonly baselineIndex: Int32Array;

  constructor(options: WindowShapeOptions) {
    const { windowSize, frameSize, baseline } = options;
    const check = (name: string, value: number, max: number) => {
      if (!Number.isInteger(value) || value < 1 || value > max) {
        throw new RangeError(`'${name}' must be an integer 1..${max}, got ${value}`);
      }
    };
    check("windowSize", windowSize, 1024);
    check("frameSize", frameSize, 10_000_000);
    this.windowSize = windowSize;
    this.frameSize = frameSize;
    const spec = baseline ? parseLevelBaseline(baseline, frameSize) : undefined;
    this.baseline = spec?.features.length ? spec : undefined;
    this.baselineIndex = new Int32Array(this.baseline ? frameSize : 0).fill(-1);
    this.baseline?.features.forEach((f, i) => {
      this.baselineIndex[f] = i;
    });
  }

  /** The windows a model scores: its window size, feature count and running levels. */
  static forModel(
    meta: Pick<ModelMetadata, "window_size" | "n_features" | "baseline">,
  ): WindowShape {
    return new WindowShape({
      windowSize: meta.window_size,
      frameSize: meta.n_features,
      baseline: meta.baseline,
    });
  }

  /** Baseline sensors per frame (0 without a baseline). */
  get baselineSize(): number {
    return this.baseline?.features.length ?? 0;
  }

  /** Values of one window (`windowSize * frameSize`). */
  get windowValues(): number {
    return this.windowSize * this.frameSize;
  }

  /**
   * Frames a stream needs, read again in order, to produce its next window exactly as before:
   * the window's other frames and the readings its running levels are taken over.
   */
  get rebuildFrames(): number {
    return this.windowSize - 1 + (this.baseline?.span ?? 0);
  }
}

/**
 * One stream's featurisation, fed its frames in order: a circular buffer of `windowSize` rows
 * and, with a baseline, each frame transformed as it joins (`LevelBaseline.apply`) and a side
 * ring of the baseline sensors' readings as they arrived (for alerts).
 *
 * Memory: `(windowSize * (frameSize + b) + span * b) * 4` bytes (`b` baseline sensors),
 * allocated at the first frame.
 */
export class StreamFeatures {
  readonly shape: WindowShape;
  #rows: Float32Array | undefined;
  #raw: Float32Array | undefined;
  #level: LevelBaseline | undefined;
  #nextRow = 0;
  #frames = 0;

  constructor(shape: WindowShape) {
    this.shape = shape;
  }

  /** Frames pushed so far. */
  get frames(): number {
    return this.#frames;
  }

  /**
   * The stream's last `min(frames, windowSize)` frames as they arrived (`[n, frameSize]`, oldest
   * first): a baseline sensor's reading from the side ring, the others from the window. What a
   * stream can be rebuilt from under another model's running levels.
   */
  lastReadings(): Float32Array {
    const { windowSize: W, frameSize: F, baselineSize: nb, baseline } = this.shape;
    const n = Math.min(this.#frames, W);
    const out = new Float32Array(n * F);
    if (n === 0 || !this.#rows) return out;
    // Oldest of the last n rows: n rows back from the next write.
    for (let k = 0; k < n; k++) {
      const row = (this.#nextRow - n + k + W) % W;
      out.set(this.#rows.subarray(row * F, (row + 1) * F), k * F);
      if (nb > 0 && baseline && this.#raw) {
        for (let i = 0; i < nb; i++) out[k * F + baseline.features[i]] = this.#raw[row * nb + i];
      }
    }
    return out;
  }

  /**
   * Appends a frame (not changed). Returns true and writes the window (oldest frame first,
   * `windowSize * frameSize` values) into `into` once the stream holds a full window, and with a
   * baseline the baseline sensors' readings as they arrived (`windowSize * baselineSize`, oldest
   * first) into `rawInto` when given.
   */
  push(values: Float32Array, into: Float32Array, rawInto?: Float32Array): boolean {
    const { windowSize, frameSize: size, baselineSize: nb } = this.shape;
    this.#rows ??= new Float32Array(windowSize * size);
    const row = this.#rows.subarray(this.#nextRow * size, (this.#nextRow + 1) * size);
    row.set(values.subarray(0, size));
    if (nb > 0) {
      this.#level ??= new LevelBaseline(this.shape.baseline as LevelBaselineSpec);
      this.#raw ??= new Float32Array(windowSize * nb);
      this.#level.apply(row, this.#raw.subarray(this.#nextRow * nb, (this.#nextRow + 1) * nb));
    }
    this.#nextRow = (this.#nextRow + 1) % windowSize;
    this.#frames++;
    if (this.#frames < windowSize) return false;
    // After the write, nextRow is the oldest row: copy in at most two contiguous pieces.
    copyRing(this.#rows, this.#nextRow * size, into);
    if (nb > 0 && rawInto) copyRing(this.#raw as Float32Array, this.#nextRow * nb, rawInto);
    return true;
  }
}

/**
 * Copies the windows of `sensors` out of one scored window `input` (`[window, features]`) into
 * `windows` (`window` values each, oldest first) as the readings arrived: for a sensor with a
 * running level the model saw reading - level, so its readings come from `raw` (`[window,
 * baseline sensors]`, as {@link StreamFeatures.push} wrote them), and the level its newest
 * reading was judged against goes to `levelsOut` (NaN for the other sensors).
 */
export function keepEvidence(
  shape: WindowShape,
  input: Float32Array,
  raw: Float32Array,
  sensors: Int32Array,
  windows: Float32Array,
  levelsOut: Float32Array,
): void {
  const { frameSize: F, windowSize: W, baselineSize: nb, baselineIndex } = shape;
  for (let j = 0; j < sensors.length; j++) {
    const f = sensors[j];
    const to = j * W;
    for (let t = 0; t < W; t++) windows[to + t] = input[t * F + f];
    const i = nb > 0 ? baselineIndex[f] : -1;
    levelsOut[j] = Number.NaN;
    if (i < 0) continue;
    for (let t = 0; t < W; t++) windows[to + t] = raw[t * nb + i];
    levelsOut[j] = raw[(W - 1) * nb + i] - input[(W - 1) * F + f];
  }
}

/** Copies ring `rows` into `into` oldest first, `split` being the offset of the oldest value. */
function copyRing(rows: Float32Array, split: number, into: Float32Array): void {
  into.set(rows.subarray(split), 0);
  if (split > 0) into.set(rows.subarray(0, split), rows.length - split);
}
