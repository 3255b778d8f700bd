import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../signal/prng.ts";
import { constantColumns } from "./constant_columns.ts";

/** The retraining's flat rule written out: sort, then the 1st and 99th percentiles' difference. */
function spreadIsZero(column: Float64Array): boolean {
  const sorted = column.slice().sort();
  const at = (q: number) => sorted[Math.round(q * (sorted.length - 1))];
  return at(0.99) - at(0.01) === 0;
}

describe("constantColumns", () => {
  it("constantColumns finds the sensors whose 1st..99th percentile spread is 0", () => {
    const T = 200;
    const F = 4;
    const values = new Float32Array(T * F);
    for (let t = 0; t < T; t++) {
      values[t * F] = Math.sin(t);
      values[t * F + 1] = 5;
      // One glitch in 200 readings sits beyond the 99th percentile: still no spread.
      values[t * F + 2] = t === 70 ? 9 : -1.5;
      // Three readings in 200 off the line reach into the 1st..99th percentile.
      values[t * F + 3] = t % 60 === 0 ? 2 : 1;
    }
    assert.deepEqual(constantColumns({ values, nFrames: T, nFeatures: F }), [1, 2]);
  });

  it("constantColumns agrees with sorting on columns of few distinct readings", () => {
    const rng = new Rng(7);
    for (const T of [1, 2, 3, 5, 50, 101, 400]) {
      const F = 60;
      const values = new Float32Array(T * F);
      for (let f = 0; f < F; f++) {
        // From a few readings off one level to many: around the rule's edge.
        const off = f / F / 10;
        for (let t = 0; t < T; t++)
          values[t * F + f] = rng.uniform() < off ? rng.range(-2, 2) : 0.5;
      }
      const expected: number[] = [];
      for (let f = 0; f < F; f++) {
        const column = Float64Array.from({ length: T }, (_, t) => values[t * F + f]);
        if (spreadIsZero(column)) expected.push(f);
      }
      assert.deepEqual(constantColumns({ values, nFrames: T, nFeatures: F }), expected, `T=${T}`);
      assert.ok(T < 50 || (expected.length > 0 && expected.length < F), `T=${T}: both kinds`);
    }
  });
});
