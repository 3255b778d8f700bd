// The metadata JSON that travels beside every ONNX model: what the engine needs to feed and read it.
import * as v from "valibot";
import { STATISTIC_PATTERN } from "./alert.ts";
import { runningConditionSchema } from "./running_condition.ts";

/** Kinds of model the training CLI produces. */
export const MODEL_KINDS = [
  "featurewise_ocsvm_rff",
  "featurewise_ocsvm_linear",
  // SVDD (the wide-kernel limit of the RBF One-Class SVM) on a whitened DCT of the window.
  "featurewise_ocsvm_svdd",
] as const;

/**
 * Running levels (model metadata `baseline`): alpha, span and the ascending, distinct feature
 * indices that follow one. The one validator of the spec: the metadata parser, training and the
 * scoring layer all go through {@link parseLevelBaseline}.
 */
export const levelBaselineSchema = v.object({
  description: v.optional(v.string()),
  alpha: v.pipe(
    v.number(),
    v.check(
      (a) => a > 0 && a <= 1,
      (i) => `must be in (0, 1], got ${i.input}`,
    ),
  ),
  span: v.pipe(
    v.number(),
    v.check(
      (s) => Number.isInteger(s) && s >= 1 && s <= 100_000,
      (i) => `must be an integer 1..100000, got ${i.input}`,
    ),
  ),
  features: v.array(v.number()),
});

export type LevelBaselineSpec = v.InferOutput<typeof levelBaselineSchema>;

/**
 * Checks a running-level spec against a model of `nFeatures` features and returns it; throws a
 * `TypeError` naming the broken rule (`baseline.alpha: must be in (0, 1], got 0`).
 */
export function parseLevelBaseline(input: unknown, nFeatures: number): LevelBaselineSpec {
  const result = v.safeParse(levelBaselineSchema, input);
  if (!result.success) {
    const issue = result.issues[0];
    throw new TypeError(`baseline.${v.getDotPath(issue) ?? "(root)"}: ${issue.message}`);
  }
  const spec = result.output;
  let previous = -1;
  for (const f of spec.features) {
    if (!Number.isInteger(f) || f <= previous || f >= nFeatures) {
      throw new TypeError(
        `baseline.features must be ascending distinct indices below ${nFeatures}`,
      );
    }
    previous = f;
  }
  return spec;
}

export const modelMetadataSchema = v.object({
  /** File stem: `NAME.onnx` + `NAME.json`. */
  name: v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]+$/)),
  /** Changes whenever what is served changes: the graph and the metadata that scores or admits frames (a sha256 prefix over them). */
  version: v.pipe(v.string(), v.minLength(1)),
  kind: v.picklist(MODEL_KINDS),
  window_size: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1024)),
  n_features: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)),
  /** Feature names in model order; length = n_features, all distinct. */
  feature_names: v.array(v.pipe(v.string(), v.minLength(1))),
  /**
   * ONNX graph input `[batch, window_size, n_features]` float32: raw sensor values, except the
   * `baseline` sensors' (their deviation from a running level).
   */
  input_name: v.string(),
  /** ONNX graph output `[batch, n_features]` float32 scores in [0, 1]. */
  output_name: v.string(),
  score: v.object({
    /** Human description of what a score means (e.g. calibrated tail probability mapping). */
    semantics: v.string(),
    /** Calibration details: method, per-feature false-alarm target, held-out windows used. */
    calibration: v.record(v.string(), v.unknown()),
  }),
  /**
   * Optional output `[batch, n_features]` float32: the severity, -log10 of the fitted tail
   * probability of the most unusual statistic. It does not saturate where the score clips at 1,
   * so it ranks anomalies; absent in models trained before it existed.
   */
  severity_output_name: v.optional(v.string()),
  /**
   * Optional output `[batch, n_features]` (int64 or float32): the index, into `statistics`, of the
   * statistic that decided each feature's score.
   */
  statistic_output_name: v.optional(v.string()),
  /** Names of the statistics in the order `statistic_output_name` indexes them. */
  statistics: v.optional(v.array(v.pipe(v.string(), v.regex(STATISTIC_PATTERN)))),
  /**
   * Per-feature typical range in the sensor's own units (`low[f]..high[f]`), shown beside a
   * flagged sensor's readings; `description` says how it was estimated.
   */
  typical: v.optional(
    v.object({
      description: v.string(),
      low: v.array(v.pipe(v.number(), v.finite())),
      high: v.array(v.pipe(v.number(), v.finite())),
    }),
  ),
  /**
   * Sensors judged against a running level (stateful, per stream): before a frame joins a window,
   * each listed sensor's reading `x_t` becomes `x_t - b_t`, `b_t` the mean of its previous `span`
   * readings (fewer at a stream's start) weighted `(1 - alpha)^(j - 1)` for the reading `j` back.
   * Absent: the graph takes raw readings only.
   */
  baseline: v.optional(levelBaselineSchema),
  /**
   * When the machine runs (`--running "SENSOR>X"` at training): a frame whose `feature` reading
   * fails it is a machine stopped, so windows holding it are neither scored nor recorded.
   */
  running: v.optional(runningConditionSchema),
  default_threshold: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
  /** Training summary: seed, rows, hyper-parameters, timings, data source. */
  training: v.record(v.string(), v.unknown()),
  onnx_sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
});

export type ModelMetadata = v.InferOutput<typeof modelMetadataSchema>;

/** Default feature names of the plant: `feature_0` .. `feature_{n-1}`. */
export function defaultFeatureNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `feature_${i}`);
}

/**
 * Parses metadata and checks the cross-field rules a schema alone cannot express.
 * Throws a `TypeError` naming the first broken rule.
 */
export function parseModelMetadata(input: unknown): ModelMetadata {
  const result = v.safeParse(modelMetadataSchema, input);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue) ?? "(root)";
    throw new TypeError(`model metadata: ${path}: ${issue.message}`);
  }
  const meta = result.output;
  if (meta.feature_names.length !== meta.n_features) {
    throw new TypeError(
      `model metadata: feature_names has ${meta.feature_names.length} names, n_features is ${meta.n_features}`,
    );
  }
  if (new Set(meta.feature_names).size !== meta.n_features) {
    throw new TypeError("model metadata: feature_names are not distinct");
  }
  if (
    meta.typical &&
    (meta.typical.low.length !== meta.n_features || meta.typical.high.length !== meta.n_features)
  ) {
    throw new TypeError("model metadata: typical.low and typical.high need one value per feature");
  }
  if (meta.typical?.low.some((low, f) => low > (meta.typical as { high: number[] }).high[f])) {
    throw new TypeError("model metadata: typical.low exceeds typical.high");
  }
  if (meta.baseline) {
    try {
      parseLevelBaseline(meta.baseline, meta.n_features);
    } catch (error) {
      throw new TypeError(`model metadata: ${(error as Error).message}`);
    }
  }
  if (meta.running && !meta.feature_names.includes(meta.running.feature)) {
    throw new TypeError(
      `model metadata: running condition names ${JSON.stringify(meta.running.feature)}, which is not a feature`,
    );
  }
  if (meta.statistic_output_name && !meta.statistics?.length) {
    throw new TypeError("model metadata: statistic_output_name needs the statistics it indexes");
  }
  return meta;
}
