// Small dense linear algebra for the peers (dozens of variables): moments, inverse, symmetric eigen.

/** Column means and population standard deviations of a row-major `[rows, cols]` matrix. */
export function columnMoments(
  values: Float64Array,
  rows: number,
  cols: number,
): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(cols);
  const std = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) mean[c] += values[r * cols + c];
  for (let c = 0; c < cols; c++) mean[c] /= rows;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) std[c] += (values[r * cols + c] - mean[c]) ** 2;
  }
  // A constant column gets scale 1, as scikit-learn's StandardScaler does.
  for (let c = 0; c < cols; c++) std[c] = Math.sqrt(std[c] / rows) || 1;
  return { mean, std };
}

/** Sample covariance (divisor rows - 1, as numpy.cov) of a row-major `[rows, cols]` matrix. */
export function covariance(values: Float64Array, rows: number, cols: number): Float64Array {
  const mean = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) mean[c] += values[r * cols + c];
  for (let c = 0; c < cols; c++) mean[c] /= rows;
  const cov = new Float64Array(cols * cols);
  const d = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) d[c] = values[r * cols + c] - mean[c];
    for (let i = 0; i < cols; i++) for (let j = i; j < cols; j++) cov[i * cols + j] += d[i] * d[j];
  }
  for (let i = 0; i < cols; i++) {
    for (let j = i; j < cols; j++) {
      cov[i * cols + j] /= rows - 1;
      cov[j * cols + i] = cov[i * cols + j];
    }
  }
  return cov;
}

/** Inverse of an `n x n` matrix (Gauss-Jordan, partial pivoting); throws when singular. */
export function invert(a: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++)
      if (Math.abs(m[r * n + col]) > Math.abs(m[piv * n + col])) piv = r;
    const p = m[piv * n + col];
    if (Math.abs(p) < 1e-300) throw new RangeError("matrix is singular");
    if (piv !== col) {
      for (let j = 0; j < n; j++) {
        [m[col * n + j], m[piv * n + j]] = [m[piv * n + j], m[col * n + j]];
        [inv[col * n + j], inv[piv * n + j]] = [inv[piv * n + j], inv[col * n + j]];
      }
    }
    for (let j = 0; j < n; j++) {
      m[col * n + j] /= p;
      inv[col * n + j] /= p;
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r * n + col];
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        m[r * n + j] -= f * m[col * n + j];
        inv[r * n + j] -= f * inv[col * n + j];
      }
    }
  }
  return inv;
}

/** The model's Jacobi eigen-decomposition (descending eigenvalues, eigenvectors as columns). */
export { symmetricEigen } from "../../featurewise/pca.ts";
