// A drifting sensor's running level per stream: the model judges its reading against it.
import { type LevelBaselineSpec, parseLevelBaseline } from "../contracts/model.ts";

export type { LevelBaselineSpec } from "../contracts/model.ts";
export { parseLevelBaseline } from "../contracts/model.ts";

/**
 * Below this weight a reading no longer counts: float32's resolution, so that the cut mean equals
 * the whole exponentially weighted one to the precision the readings arrive in.
 */
const NEGLIGIBLE = 2 ** -24;

/**
 * Readings an exponential weighting with `alpha` needs before the next weight falls below float32's
 * resolution (`(1 - alpha)^span < 2^-24`): 75 at alpha 0.2, 1 at alpha 1.
 */
export function spanFor(alpha: number): number {
  if (alpha >= 1) return 1;
  return Math.ceil(Math.log(NEGLIGIBLE) / Math.log(1 - alpha));
}

/**
 * One stream's running levels. The level of sensor `f` before reading `x_t` is the weighted mean
 * of its previous `span` readings (at most; fewer while the stream is younger), reading `j` back
 * weighing `(1 - alpha)^(j - 1)`: an exponentially weighted average cut at the span. `apply` turns
 * a frame, in stream order, into what the model sees: each baseline sensor's reading minus that
 * level. A stream's first reading is its own level (it reads 0); non-finite readings are passed
 * to the model as they are but never enter a level. Other sensors pass unchanged.
 *
 * Because the level depends on the last `span` readings only, a stream rebuilt from them (a
 * restarted engine, a scale-out worker taking a partition over) computes exactly the same
 * numbers as one that saw it all.
 */
export class LevelBaseline {
  readonly span: number;
  readonly features: Int32Array;
  /** Weight of the reading `j + 1` back. */
  readonly #weights: Float64Array;
  /** The last `span` readings of each sensor, `[span, features]`, a ring. */
  readonly #ring: Float32Array;
  #next = 0;
  #count = 0;
  readonly #sum: Float64Array;
  readonly #weight: Float64Array;

  constructor(spec: LevelBaselineSpec) {
    parseLevelBaseline(spec, Number.POSITIVE_INFINITY);
    this.span = spec.span;
    this.features = Int32Array.from(spec.features);
    const nb = spec.features.length;
    this.#weights = Float64Array.from({ length: spec.span }, (_, j) => (1 - spec.alpha) ** j);
    this.#ring = new Float32Array(spec.span * nb);
    this.#sum = new Float64Array(nb);
    this.#weight = new Float64Array(nb);
  }

  /** Readings seen so far. */
  get frames(): number {
    return this.#count;
  }

  /**
   * Transforms `frame` in place (each baseline sensor: reading minus its level) and writes the
   * baseline sensors' readings as they arrived into `rawOut` (in `features` order).
   */
  apply(frame: Float32Array, rawOut?: Float32Array): void {
    const { features, span } = this;
    const nb = features.length;
    const ring = this.#ring;
    const sum = this.#sum;
    const weight = this.#weight;
    sum.fill(0);
    weight.fill(0);
    // Newest first, the same order everywhere: training and serving add in the same order.
    const seen = Math.min(this.#count, span);
    for (let j = 0; j < seen; j++) {
      const w = this.#weights[j];
      const at = ((this.#next - 1 - j + span) % span) * nb;
      for (let i = 0; i < nb; i++) {
        const v = ring[at + i];
        if (Number.isFinite(v)) {
          sum[i] += w * v;
          weight[i] += w;
        }
      }
    }
    const slot = this.#next * nb;
    for (let i = 0; i < nb; i++) {
      const f = features[i];
      const x = frame[f];
      ring[slot + i] = x;
      if (rawOut) rawOut[i] = x;
      if (weight[i] > 0) frame[f] = x - sum[i] / weight[i];
      else if (Number.isFinite(x)) frame[f] = 0;
    }
    this.#next = (this.#next + 1) % span;
    this.#count++;
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
