// The cross-sensor stage's subspace: PCA of robust-standardised readings by randomised subspace iteration.
import { Rng } from "../signal/prng.ts";

export interface CrossSensorFit {
  /** Retained components (>= 0). */
  k: number;
  /** [F, max(k, 1)] orthonormal loadings, row-major by feature (a zero column when k = 0). */
  basis: Float32Array;
  /** Columns stored in `basis` (max(k, 1)). */
  cols: number;
  /** [F] RMS of each sensor's per-frame residual off the subspace (the rejection steps' unit). */
  residualScale: Float32Array;
  /** Eigenvalues of the retained and the next few examined components (per-frame variance units). */
  eigenvalues: number[];
  /** The eigenvalue a component had to exceed (the mean variance of one sensor). */
  edge: number;
  rows: number;
}

export interface CrossSensorOptions {
  /** Most components kept. */
  kMax: number;
  /** Extra random directions beyond kMax (accuracy of the range finder). */
  oversample: number;
  /** Power iterations (separate the leading components from the rest). */
  powerIters: number;
  /** At most this many frames, evenly strided, enter the fit (bounds time for long histories). */
  maxRows: number;
  seed: number;
}

/**
 * The projection on the subspace is robust, so that one gross reading (a sensor jumping to 1e6)
 * does not move it and leak into every other sensor's residual. Start: the standardised window
 * means clipped to +-PROJECTION_CLIP (6 robust standard deviations, beyond normal operation);
 * then PROJECTION_ITERATIONS rejection steps: with `ratio_f = |clip(zbar_f) - pred_f| / scale_f`,
 * a sensor whose ratio exceeds both REJECT_C and half the window's largest ratio is rejected for
 * the rest of the window and replaced by its prediction from the others (treated as missing, as
 * in EM for missing data); the others stay clipped; then the window is projected again.
 * Rejecting only the worst group at a time avoids masking: the first, contaminated projection
 * moves every sensor a little, the gross ones a lot. Ratios and the sensors kept use the clipped
 * values, so gross readings of very different sizes (1e6, 5e3, 300) all sit at the clip and leave
 * together in the first step; with unclipped ratios only the largest left per step and the next
 * projection carried the rest in full (3 such readings in 2,000 plant sensors flagged 1,716 others).
 * Huber clipping was tried first: its fixed point still leaks REJECT_C x scale x |P_f|^2, enough
 * to flag correlated neighbours. Two steps: a third changed nothing measured (SKAB, TEP, gross
 * readings on 10 to 300 of 2,000 plant sensors: no other sensor flagged) and cost 10 % of the
 * graph's time. Each sensor's own residual is
 * then taken from its unclipped value.
 */
export const PROJECTION_CLIP = 6;
export const REJECT_C = 4;
export const PROJECTION_ITERATIONS = 2;

export const CROSS_SENSOR_DEFAULTS: CrossSensorOptions = {
  kMax: 20,
  oversample: 10,
  powerIters: 3,
  maxRows: 2000,
  seed: 1,
};

/**
 * Leading principal directions of `z[t, f] = (values[t, f] - loc[f]) * invScale[f]` over frames
 * `0 .. nRows - 1` (the fit part). Randomised subspace iteration (Halko, Martinsson & Tropp):
 * memory and time are O(frames x features x (kMax + oversample)), so 25,000 features never form
 * a 25,000 x 25,000 covariance. A component is kept when its eigenvalue exceeds the mean
 * variance of one sensor (Kaiser-Guttman: it carries more than any single sensor would on its
 * own), up to kMax. The stricter Marchenko-Pastur edge `mean variance x (1 + sqrt(F / n))^2`
 * was tried first: on Tennessee Eastman it kept 5 components and left the relation that fault 5
 * breaks inside the subspace (caught on 30-50 % of its samples; with 10 or more, on all).
 */
export function fitCrossSensor(
  values: Float32Array,
  nFeatures: number,
  nRows: number,
  loc: Float32Array,
  invScale: Float32Array,
  options: Partial<CrossSensorOptions> = {},
): CrossSensorFit {
  const o = { ...CROSS_SENSOR_DEFAULTS, ...options };
  const F = nFeatures;
  const stride = Math.max(1, Math.ceil(nRows / o.maxRows));
  const rows: number[] = [];
  for (let t = 0; t < nRows; t += stride) rows.push(t);
  const n = rows.length;
  const l = Math.max(1, Math.min(o.kMax + o.oversample, n, F));
  const z = new Float64Array(F);
  const zRow = (t: number) => {
    const base = t * F;
    for (let f = 0; f < F; f++) z[f] = (values[base + f] - loc[f]) * invScale[f];
  };
  // Y = Z G for G [F, l]; G' = Z^T Y for Y [n, l].
  const timesG = (g: Float64Array, y: Float64Array) => {
    y.fill(0);
    for (let i = 0; i < n; i++) {
      zRow(rows[i]);
      const yi = i * l;
      for (let f = 0; f < F; f++) {
        const zf = z[f];
        if (zf === 0) continue;
        const gf = f * l;
        for (let j = 0; j < l; j++) y[yi + j] += zf * g[gf + j];
      }
    }
  };
  const transTimesY = (y: Float64Array, g: Float64Array) => {
    g.fill(0);
    for (let i = 0; i < n; i++) {
      zRow(rows[i]);
      const yi = i * l;
      for (let f = 0; f < F; f++) {
        const zf = z[f];
        if (zf === 0) continue;
        const gf = f * l;
        for (let j = 0; j < l; j++) g[gf + j] += zf * y[yi + j];
      }
    }
  };
  let trace = 0;
  for (const t of rows) {
    zRow(t);
    for (let f = 0; f < F; f++) trace += z[f] * z[f];
  }
  const rng = new Rng(o.seed);
  const g = new Float64Array(F * l);
  for (let i = 0; i < g.length; i++) g[i] = rng.normal();
  const y = new Float64Array(n * l);
  timesG(g, y);
  for (let it = 0; it < o.powerIters; it++) {
    orthonormalise(y, n, l);
    transTimesY(y, g);
    orthonormalise(g, F, l);
    timesG(g, y);
  }
  orthonormalise(y, n, l);
  // B^T = Z^T Q [F, l]; B B^T = (Z^T Q)^T (Z^T Q) [l, l] has the squared singular values.
  transTimesY(y, g);
  const c = new Float64Array(l * l);
  for (let f = 0; f < F; f++) {
    const gf = f * l;
    for (let a = 0; a < l; a++) {
      const ga = g[gf + a];
      for (let b = a; b < l; b++) c[a * l + b] += ga * g[gf + b];
    }
  }
  for (let a = 0; a < l; a++) for (let b = 0; b < a; b++) c[a * l + b] = c[b * l + a];
  const { values: sigma2, vectors: u } = symmetricEigen(c, l);
  // Sensors with a zero unit (left out of the stage) do not count in the mean variance.
  let active = 0;
  for (let f = 0; f < F; f++) if (invScale[f] !== 0) active++;
  const meanVar = trace / (n * Math.max(active, 1));
  const edge = meanVar;
  let k = 0;
  while (k < Math.min(o.kMax, l) && sigma2[k] / n > edge) k++;
  const cols = Math.max(k, 1);
  const basis = new Float32Array(F * cols);
  for (let j = 0; j < k; j++) {
    const inv = 1 / Math.sqrt(sigma2[j]);
    // v_j = B^T u_j / sigma_j
    for (let f = 0; f < F; f++) {
      let acc = 0;
      for (let a = 0; a < l; a++) acc += g[f * l + a] * u[a * l + j];
      basis[f * cols + j] = acc * inv;
    }
  }
  const shown = Math.min(l, k + 3);
  const eigenvalues = Array.from({ length: shown }, (_, j) => sigma2[j] / n);
  // Residual scale per sensor: RMS of z - P P^T z over the fit frames, floored so that a sensor
  // the subspace explains exactly still has a unit.
  const ss = new Float64Array(F);
  const t = new Float64Array(cols);
  for (const row of rows) {
    zRow(row);
    t.fill(0);
    for (let f = 0; f < F; f++) for (let j = 0; j < cols; j++) t[j] += z[f] * basis[f * cols + j];
    for (let f = 0; f < F; f++) {
      let r = z[f];
      for (let j = 0; j < cols; j++) r -= basis[f * cols + j] * t[j];
      ss[f] += r * r;
    }
  }
  const residualScale = Float32Array.from(ss, (v) => Math.max(Math.sqrt(v / n), 1e-3));
  return { k, basis, cols, residualScale, eigenvalues, edge, rows: n };
}

/** Modified Gram-Schmidt on the l columns of a row-major [m, l] matrix, in place. */
function orthonormalise(a: Float64Array, m: number, l: number): void {
  for (let j = 0; j < l; j++) {
    for (let p = 0; p < j; p++) {
      let dot = 0;
      for (let i = 0; i < m; i++) dot += a[i * l + j] * a[i * l + p];
      for (let i = 0; i < m; i++) a[i * l + j] -= dot * a[i * l + p];
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += a[i * l + j] * a[i * l + j];
    norm = Math.sqrt(norm);
    // A column that vanished (rank below l) is left at zero; it then contributes nothing.
    const inv = norm > 1e-300 ? 1 / norm : 0;
    for (let i = 0; i < m; i++) a[i * l + j] *= inv;
  }
}

/**
 * Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations: eigenvalues in
 * descending order and the matching eigenvectors as the columns of a row-major [l, l] matrix.
 */
export function symmetricEigen(
  m: Float64Array,
  l: number,
): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(l * l);
  for (let i = 0; i < l; i++) v[i * l + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let p = 0; p < l; p++) {
      diag += a[p * l + p] ** 2;
      for (let q = p + 1; q < l; q++) off += a[p * l + q] ** 2;
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < l; p++) {
      for (let q = p + 1; q < l; q++) {
        const apq = a[p * l + q];
        if (apq === 0) continue;
        const theta = (a[q * l + q] - a[p * l + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < l; k++) {
          const akp = a[k * l + p];
          const akq = a[k * l + q];
          a[k * l + p] = c * akp - s * akq;
          a[k * l + q] = s * akp + c * akq;
        }
        for (let k = 0; k < l; k++) {
          const apk = a[p * l + k];
          const aqk = a[q * l + k];
          a[p * l + k] = c * apk - s * aqk;
          a[q * l + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < l; k++) {
          const vkp = v[k * l + p];
          const vkq = v[k * l + q];
          v[k * l + p] = c * vkp - s * vkq;
          v[k * l + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: l }, (_, i) => i).sort(
    (i, j) => a[j * l + j] - a[i * l + i] || i - j,
  );
  const values = Float64Array.from(order, (i) => a[i * l + i]);
  const vectors = new Float64Array(l * l);
  for (let r = 0; r < l; r++) for (let j = 0; j < l; j++) vectors[r * l + j] = v[r * l + order[j]];
  return { values, vectors };
}

/**
 * Robust scores `t` [cols] of one window's standardised means `zbar` [F] on the subspace:
 * clipped start, then PROJECTION_ITERATIONS rejection steps (see PROJECTION_CLIP). `work` [F].
 */
export function robustProjection(
  zbar: Float64Array,
  basis: Float32Array,
  cols: number,
  residualScale: Float32Array,
  t: Float64Array,
  work: Float64Array,
): void {
  const F = zbar.length;
  for (let f = 0; f < F; f++) work[f] = clipProjection(zbar[f]);
  const rejected = new Uint8Array(F);
  const pred = new Float64Array(F);
  for (let it = 0; it <= PROJECTION_ITERATIONS; it++) {
    t.fill(0);
    for (let f = 0; f < F; f++) {
      const zf = work[f];
      for (let j = 0; j < cols; j++) t[j] += zf * basis[f * cols + j];
    }
    if (it === PROJECTION_ITERATIONS) break;
    let maxRatio = 0;
    for (let f = 0; f < F; f++) {
      let p = 0;
      for (let j = 0; j < cols; j++) p += basis[f * cols + j] * t[j];
      pred[f] = p;
      const ratio = Math.abs(clipProjection(zbar[f]) - p) / residualScale[f];
      if (ratio > maxRatio) maxRatio = ratio;
    }
    const limit = Math.max(REJECT_C, 0.5 * maxRatio);
    for (let f = 0; f < F; f++) {
      const z = clipProjection(zbar[f]);
      if (Math.abs(z - pred[f]) / residualScale[f] > limit) rejected[f] = 1;
      work[f] = rejected[f] ? pred[f] : z;
    }
  }
}

/**
 * The cross-sensor statistic of one window, per feature: the squared residual of the window's
 * mean standardised reading off the retained subspace, `r = zbar - P t`, `out[f] = r_f^2`
 * (sensor f's contribution to the squared prediction error, SPE / Q), `t` the robust projection.
 * A relation between sensors that breaks shows here even when every reading stays in its own
 * normal range.
 */
export function residualContributions(
  zbar: Float64Array,
  fit: Pick<CrossSensorFit, "basis" | "cols" | "residualScale">,
  out: Float64Array,
): void {
  const F = zbar.length;
  const t = new Float64Array(fit.cols);
  robustProjection(zbar, fit.basis, fit.cols, fit.residualScale, t, new Float64Array(F));
  for (let f = 0; f < F; f++) {
    let recon = 0;
    for (let j = 0; j < fit.cols; j++) recon += fit.basis[f * fit.cols + j] * t[j];
    const r = zbar[f] - recon;
    out[f] = r * r;
  }
}

/** The value of a standardised window mean that enters the projection. */
export function clipProjection(z: number): number {
  return Math.min(PROJECTION_CLIP, Math.max(-PROJECTION_CLIP, z));
}
