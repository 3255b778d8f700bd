// Finds the sensors that do not vary in a training series: the model learns them as a constant and flags any change.

/**
 * The columns of `series` (row-major `[nFrames, nFeatures]`, finite readings) whose
 * 1st..99th-percentile spread is 0: the retraining's flat check (models/retrain/flat_sensors.ts),
 * with the same quantile positions, `round(q * (nFrames - 1))` of the sorted readings, and a flat
 * line meaning no spread at all, as there is no earlier model to compare it with here.
 *
 * A spread of 0 means one reading fills every sorted position from the 1st percentile's to the
 * 99th's, which is more than half of them for any `nFrames`, so that reading is the column's
 * majority: one pass finds each column's candidate (Boyer-Moore vote), a second counts it and the
 * readings below it, which places it in the sorted order. O(nFrames x nFeatures), no sort.
 *
 * @example constantColumns({ values: Float32Array.of(1, 5, 2, 5), nFrames: 2, nFeatures: 2 }); // [1]
 */
export function constantColumns(series: {
  values: Float32Array;
  nFrames: number;
  nFeatures: number;
}): number[] {
  const { values, nFrames: T, nFeatures: F } = series;
  if (T === 0) return [];
  const candidate = new Float32Array(F);
  const votes = new Int32Array(F);
  for (let t = 0; t < T; t++) {
    const row = t * F;
    for (let f = 0; f < F; f++) {
      const x = values[row + f];
      if (votes[f] === 0) {
        candidate[f] = x;
        votes[f] = 1;
      } else {
        votes[f] += candidate[f] === x ? 1 : -1;
      }
    }
  }
  const equal = new Int32Array(F);
  const below = new Int32Array(F);
  for (let t = 0; t < T; t++) {
    const row = t * F;
    for (let f = 0; f < F; f++) {
      const x = values[row + f];
      if (x === candidate[f]) equal[f]++;
      else if (x < candidate[f]) below[f]++;
    }
  }
  const low = Math.round(0.01 * (T - 1));
  const high = Math.round(0.99 * (T - 1));
  const constant: number[] = [];
  // The candidate sits at sorted positions below[f] .. below[f] + equal[f] - 1.
  for (let f = 0; f < F; f++) {
    if (below[f] <= low && below[f] + equal[f] - 1 >= high) constant.push(f);
  }
  return constant;
}
