import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../signal/prng.ts";
import { fitCrossSensor, residualContributions, symmetricEigen } from "./pca.ts";

describe("symmetricEigen", () => {
  it("symmetricEigen returns descending eigenvalues and orthonormal eigenvectors", () => {
    const m = Float64Array.of(4, 1, 0, 1, 3, 1, 0, 1, 2);
    const { values, vectors } = symmetricEigen(m, 3);
    assert.ok(values[0] >= values[1] && values[1] >= values[2]);
    for (let j = 0; j < 3; j++) {
      // M v = lambda v
      for (let r = 0; r < 3; r++) {
        let mv = 0;
        for (let c = 0; c < 3; c++) mv += m[r * 3 + c] * vectors[c * 3 + j];
        assert.ok(Math.abs(mv - values[j] * vectors[r * 3 + j]) < 1e-9);
      }
    }
    // Trace is preserved: 4 + 3 + 2.
    assert.ok(Math.abs(values[0] + values[1] + values[2] - 9) < 1e-9);
  });
});

describe("fitCrossSensor", () => {
  const F = 300;
  const T = 800;
  const rng = new Rng(5);
  // Two common factors drive the first 200 sensors; the last 100 are independent noise.
  const load = Array.from({ length: 2 * F }, () => rng.normal());
  const values = new Float32Array(T * F);
  for (let t = 0; t < T; t++) {
    const a = 3 * rng.normal();
    const b = 2 * rng.normal();
    for (let f = 0; f < F; f++) {
      const common = f < 200 ? a * load[f] + b * load[F + f] : 0;
      values[t * F + f] = 10 + common + rng.normal();
    }
  }
  const loc = new Float32Array(F).fill(10);
  const inv = new Float32Array(F).fill(1);

  it("fitCrossSensor finds the planted factors and no more, with orthonormal loadings", () => {
    const fit = fitCrossSensor(values, F, T, loc, inv, { kMax: 20 });
    assert.equal(fit.k, 2, `eigenvalues ${fit.eigenvalues}`);
    assert.equal(fit.cols, 2);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        let dot = 0;
        for (let f = 0; f < F; f++) dot += fit.basis[f * 2 + i] * fit.basis[f * 2 + j];
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-4, `P^T P [${i}, ${j}] = ${dot}`);
      }
    }
    // The independent sensors load (almost) nothing.
    let tailMass = 0;
    for (let f = 200; f < F; f++) tailMass += fit.basis[f * 2] ** 2 + fit.basis[f * 2 + 1] ** 2;
    assert.ok(tailMass < 0.05, `loading mass on independent sensors ${tailMass}`);
  });

  it("residualContributions is small on a normal frame and large where a relation breaks", () => {
    const fit = fitCrossSensor(values, F, T, loc, inv, { kMax: 20 });
    const z = new Float64Array(F);
    for (let f = 0; f < F; f++) z[f] = values[100 * F + f] - 10;
    const normal = new Float64Array(F);
    residualContributions(z, fit, normal);
    // Sensor 0 moves against its factors by 8 noise std.
    z[0] += 8;
    const broken = new Float64Array(F);
    residualContributions(z, fit, broken);
    assert.ok(broken[0] > 40, `broken ${broken[0]}`);
    assert.ok(normal[0] < 16, `normal ${normal[0]}`);
  });

  it("fitCrossSensor is deterministic for a seed", () => {
    const a = fitCrossSensor(values, F, T, loc, inv, { seed: 9 });
    const b = fitCrossSensor(values, F, T, loc, inv, { seed: 9 });
    assert.deepEqual(a.basis, b.basis);
  });
});
