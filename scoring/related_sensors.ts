// Names the sensors a flagged sensor's cross-sensor prediction leans on, from the model's principal subspace; pure.

/**
 * The model's cross-sensor stage: `basis` `[nFeatures, cols]` holds orthonormal loadings of the
 * standardised readings `z = (x - loc) * invScale` (a sensor with a running level: of its
 * deviation from that level). A sensor's reconstruction from the subspace is `P z` with
 * `P = basis basisᵀ`.
 */
export interface CrossSubspace {
  nFeatures: number;
  cols: number;
  basis: Float32Array;
  loc: Float32Array;
  invScale: Float32Array;
}

/** One partner of a flagged sensor: its index and its share of the sensor's reconstruction. */
export interface Partner {
  feature_idx: number;
  weight: number;
}

/**
 * The `count` sensors sensor `f`'s subspace reconstruction `(P z)_f = Σ_j P_fj z_j` leans on most,
 * ranked by `|P_fj|`. Each one's `weight` is `|P_fj| / √(P_ff P_jj)`: how closely the subspace
 * ties the two (the cosine of their loadings; 1 when they move as one, 0 when unrelated). A
 * sensor outside the subspace (a zero row) has none. Costs `nFeatures × cols` multiply-adds:
 * called for an alert's listed sensors only, never per window.
 *
 * @example relatedSensors(subspace, 17, 4); // [{ feature_idx: 230, weight: 0.93 }, ...]
 */
export function relatedSensors(sub: CrossSubspace, f: number, count: number): Partner[] {
  const { nFeatures: F, cols: k, basis } = sub;
  if (f < 0 || f >= F || count <= 0) return [];
  const row = f * k;
  let own = 0;
  for (let c = 0; c < k; c++) own += basis[row + c] * basis[row + c];
  if (own === 0) return [];
  // The `count` largest |P_fj| kept in a small sorted list (with their cosines): no F-sized
  // allocation per call.
  const lean: number[] = [];
  const top: Partner[] = [];
  for (let j = 0; j < F; j++) {
    if (j === f) continue;
    let p = 0;
    const at = j * k;
    for (let c = 0; c < k; c++) p += basis[row + c] * basis[at + c];
    const e = Math.abs(p);
    if (e === 0 || (top.length === count && e <= lean[count - 1])) continue;
    let norm = 0;
    for (let c = 0; c < k; c++) norm += basis[at + c] * basis[at + c];
    if (top.length === count) {
      top.pop();
      lean.pop();
    }
    let i = top.length;
    while (i > 0 && lean[i - 1] < e) i--;
    lean.splice(i, 0, e);
    top.splice(i, 0, { feature_idx: j, weight: Math.min(1, e / Math.sqrt(own * norm)) });
  }
  return top;
}

/**
 * Sensor `j`'s standardised deviation over `readings` (its last window, oldest first): of
 * `(x - level - loc_j) * invScale_j`, as the cross-sensor stage sees a reading, the one farthest
 * from 0, signed: in robust standard deviations of its training readings. A shift shows as its
 * size, a noise burst as its largest swing. `level`: a sensor with a running level's level.
 */
export function standardisedDeviation(
  sub: Pick<CrossSubspace, "loc" | "invScale">,
  j: number,
  readings: ArrayLike<number>,
  level = 0,
): number {
  let far = 0;
  for (let i = 0; i < readings.length; i++) {
    const z = (readings[i] - level - sub.loc[j]) * sub.invScale[j];
    if (Math.abs(z) > Math.abs(far)) far = z;
  }
  return far;
}
