// Parameter sets of the two feature-wise models, as stored in the ONNX initialisers (one name each).

/** Model kinds this folder produces (values of `kind` in the metadata). */
export type FeaturewiseKind = "featurewise_ocsvm_svdd" | "featurewise_ocsvm_linear";

/**
 * Calibration of a nonconformity statistic `s` (higher = stranger) into a score:
 * `t = s - tailU`; `logp = ln(max(1 + tailK * t, 1e-30))`; `score = clip(scoreA * logp + scoreB, 0, 1)`.
 * This is `score = clip(0.9 * ln(p) / ln(p_target), 0, 1)` with `p` the fitted GPD tail probability
 * `p = p_u * (1 + xi * t / beta)^(-1/xi)` (tailK = xi/beta, scoreA = -c/xi, scoreB = c ln p_u,
 * c = 0.9 / ln p_target).
 */
export interface TailParams {
  /** Calibrated statistics per feature (1 linear; 5 default: level, dynamics, quiet, agitation, residual). */
  nStats: number;
  tailU: Float32Array;
  tailK: Float32Array;
  scoreA: Float32Array;
  scoreB: Float32Array;
  /**
   * `-log10(p_target_per_statistic) / threshold`: the severity, -log10 of the fitted tail
   * probability of the deciding statistic, is `max(raw, 0) * severityScale` where raw is the
   * largest unclipped score (the mapping is linear in ln p).
   */
  severityScale: number;
}

/** Original baseline: linear OCSVM on the raw window divided by the sensor's RMS; s = rho - w.z. */
export interface LinearParams extends TailParams {
  kind: "featurewise_ocsvm_linear";
  windowSize: number;
  nFeatures: number;
  /** [F] 1 / RMS of the raw values. */
  invScale: Float32Array;
  /** [W, F] per-feature weights. */
  weight: Float32Array;
  /** [F] offsets. */
  rho: Float32Array;
}

/**
 * Default: SVDD (= RBF One-Class SVM in its wide-kernel limit) in a per-feature whitened window
 * space: e = DCT(x - loc) * invScale - center; ||e||^2 is split into a level part e_0^2 and a
 * dynamics part sum_{k>=1} e_k^2, plus a quiet statistic -ln(dynamics + 1e-9) and an agitation
 * statistic min_j ((x_j - x_{j-1}) * invScaleD)^2, and a cross-sensor residual r_f^2 with
 * r = zbar - P P^T zbar (zbar the window mean of (x - loc) * invScaleZ); each is calibrated (tail
 * arrays are [5, F]) and the score is the largest of the five.
 */
export interface SvddParams extends TailParams {
  kind: "featurewise_ocsvm_svdd";
  windowSize: number;
  nFeatures: number;
  /** [F] robust location (median). */
  loc: Float32Array;
  /** [F] 1 / robust scale of the frame-to-frame changes (agitation statistic). */
  invScaleD: Float32Array;
  /** [W, W] orthonormal DCT-II basis (row k = frequency k). */
  basis: Float32Array;
  /** [W, F] 1 / robust scale of each DCT coefficient. */
  invScale: Float32Array;
  /** [W, F] SVDD centre in the whitened space. */
  center: Float32Array;
  /** [2, W] rows selecting the level (k = 0) and dynamics (k >= 1) parts of e^2. */
  select: Float32Array;
  /** [F] 1 / robust scale of the raw readings (the cross-sensor stage's standardisation). */
  invScaleZ: Float32Array;
  /** [F, crossCols] orthonormal PCA loadings of the standardised readings (cross-sensor stage). */
  crossBasis: Float32Array;
  /** Columns of `crossBasis` (retained components; one zero column when none is retained). */
  crossCols: number;
  /** [F] residual scale of each sensor off the subspace (unit of the robust projection's steps). */
  crossScale: Float32Array;
}

export type FeaturewiseParams = LinearParams | SvddParams;

/** Names of the per-feature tensors of each kind, in initialiser order. */
export const TENSOR_NAMES = {
  featurewise_ocsvm_linear: [
    "invScale",
    "weight",
    "rho",
    "tailU",
    "tailK",
    "scoreA",
    "scoreB",
    "severityScale",
  ],
  featurewise_ocsvm_svdd: [
    "loc",
    "invScaleD",
    "basis",
    "invScale",
    "center",
    "select",
    "invScaleZ",
    "crossBasis",
    "crossScale",
    "tailU",
    "tailK",
    "scoreA",
    "scoreB",
    "severityScale",
  ],
} as const;

/** The [2, W] selector of level and dynamics energy. */
export function statSelector(W: number): Float32Array {
  const s = new Float32Array(2 * W);
  s[0] = 1;
  for (let k = 1; k < W; k++) s[W + k] = 1;
  return s;
}

/** Orthonormal DCT-II basis of size n, row-major [k][i]. */
export function dctBasis(n: number): Float64Array {
  const q = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const norm = k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
    for (let i = 0; i < n; i++) q[k * n + i] = norm * Math.cos((Math.PI * (i + 0.5) * k) / n);
  }
  return q;
}
