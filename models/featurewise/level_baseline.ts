// A drifting sensor's running level (EWMA per stream): the model judges its reading against it.

/**
 * Which sensors follow a running level, and how fast it moves. Part of the model: the metadata
 * carries it (`baseline`), training applies it to the history, the engine to every stream.
 */
export interface LevelBaselineSpec {
  /** EWMA weight of the newest reading (0 < alpha <= 1): the level forgets in about 1/alpha frames. */
  alpha: number;
  /** Model feature indices that follow a running level, ascending. */
  features: readonly number[];
}

/**
 * One stream's running levels. `apply` turns a frame, in stream order, into what the model sees:
 * each baseline sensor's reading minus its level before that frame (`x_t - b_{t-1}`), then folds
 * the reading in (`b_t = b_{t-1} + alpha (x_t - b_{t-1})`). The first frame starts the level, so it
 * reads 0. Other sensors pass unchanged.
 */
export class LevelBaseline {
  readonly alpha: number;
  readonly features: Int32Array;
  readonly level: Float64Array;
  frames = 0;

  constructor(spec: LevelBaselineSpec) {
    checkSpec(spec, Number.POSITIVE_INFINITY);
    this.alpha = spec.alpha;
    this.features = Int32Array.from(spec.features);
    this.level = new Float64Array(spec.features.length);
  }

  /**
   * Transforms `frame` in place and writes each baseline sensor's level before it into
   * `levelOut` (in `features` order), so that `frame[f] + levelOut[i]` is the raw reading.
   */
  apply(frame: Float32Array, levelOut?: Float32Array): void {
    const { features, level, alpha } = this;
    if (this.frames === 0) for (let i = 0; i < features.length; i++) level[i] = frame[features[i]];
    for (let i = 0; i < features.length; i++) {
      const f = features[i];
      const x = frame[f];
      const b = level[i];
      if (levelOut) levelOut[i] = b;
      frame[f] = x - b;
      // A non-finite reading is the model's to flag; it must not poison the level for good.
      if (Number.isFinite(x)) level[i] = b + alpha * (x - b);
    }
    this.frames++;
  }
}

/** Below this share of a starting discrepancy, two levels fed the same frames count as equal. */
const SETTLED = 1e-3;

/**
 * Frames after which a level no longer depends on where it started (its start's weight
 * `(1 - alpha)^n` is below 1e-3): a stream rebuilt from its last `warmupFrames` frames, plus a
 * window, continues with the levels it had (31 frames at alpha 0.2). 0 without a baseline.
 */
export function warmupFrames(spec: LevelBaselineSpec | undefined): number {
  if (!spec?.features.length) return 0;
  if (spec.alpha >= 1) return 1;
  return Math.ceil(Math.log(SETTLED) / Math.log(1 - spec.alpha));
}

/** Throws a `TypeError` unless `spec` is a valid baseline for `nFeatures` features. */
export function checkSpec(spec: LevelBaselineSpec, nFeatures: number): void {
  if (!(spec.alpha > 0 && spec.alpha <= 1)) {
    throw new TypeError(`baseline.alpha must be in (0, 1], got ${spec.alpha}`);
  }
  let previous = -1;
  for (const f of spec.features) {
    if (!Number.isInteger(f) || f <= previous || f >= nFeatures) {
      throw new TypeError(
        `baseline.features must be ascending distinct feature indices below ${nFeatures}`,
      );
    }
    previous = f;
  }
}

/**
 * The history as the model sees it: a copy of row-major `[nFrames, nFeatures]` `values` with the
 * baseline applied in frame order, exactly as a stream that starts at its first frame.
 */
export function applyToHistory(
  values: Float32Array,
  nFeatures: number,
  spec: LevelBaselineSpec,
): Float32Array {
  const out = Float32Array.from(values);
  if (spec.features.length === 0) return out;
  const baseline = new LevelBaseline(spec);
  for (let t = 0; t * nFeatures < out.length; t++) {
    baseline.apply(out.subarray(t * nFeatures, (t + 1) * nFeatures));
  }
  return out;
}
