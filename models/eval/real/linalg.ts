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

/**
 * Eigen-decomposition of a symmetric `n x n` matrix (cyclic Jacobi). Returns eigenvalues in
 * descending order and the matching eigenvectors as the columns of `vectors` (row-major).
 */
export function symmetricEigen(
  a: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += m[i * n + j] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k * n + p];
          const akq = m[k * n + q];
          m[k * n + p] = c * akp - s * akq;
          m[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p * n + k];
          const aqk = m[q * n + k];
          m[p * n + k] = c * apk - s * aqk;
          m[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => m[y * n + y] - m[x * n + x]);
  const values = Float64Array.from(order, (i) => m[i * n + i]);
  const vectors = new Float64Array(n * n);
  for (let k = 0; k < n; k++) for (let r = 0; r < n; r++) vectors[r * n + k] = v[r * n + order[k]];
  return { values, vectors };
}
