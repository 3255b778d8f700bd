import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../signal/prng.ts";
import { fitTail, scoreMap, tailScore } from "./tail.ts";

describe("fitTail", () => {
  it("fitTail recovers the scale of an exponential tail", () => {
    const rng = new Rng(3);
    const x = Float64Array.from({ length: 20_000 }, () => -2 * Math.log(1 - rng.uniform()));
    const fit = fitTail(x, 0.1, 0);
    assert.ok(fit.xiHat < 0.08, `xi ${fit.xiHat}`);
    assert.ok(Math.abs(fit.beta - 2) < 0.25, `beta ${fit.beta}`);
    assert.ok(Math.abs(fit.pu - 0.1) < 0.01);
  });

  it("fitTail finds a heavy tail and the margin makes it heavier", () => {
    const rng = new Rng(4);
    // Pareto with xi = 0.5: P(X > x) = x^-2.
    const x = Float64Array.from({ length: 20_000 }, () => (1 - rng.uniform()) ** -0.5);
    const plain = fitTail(Float64Array.from(x), 0.1, 0);
    const safe = fitTail(Float64Array.from(x), 0.1, 2);
    assert.ok(Math.abs(plain.xiHat - 0.5) < 0.12, `xi ${plain.xiHat}`);
    assert.ok(safe.xi > plain.xi);
  });

  it("fitTail keeps exceedances for a quantised statistic with ties", () => {
    const x = Float64Array.from({ length: 1000 }, (_, i) =>
      i % 10 === 0 ? 4 : i % 97 === 0 ? 9 : 0,
    );
    const fit = fitTail(x, 0.1, 1);
    assert.ok(fit.exceedances >= 10, `exceedances ${fit.exceedances}`);
    assert.ok(fit.u < 4);
  });
});

describe("scoreMap", () => {
  it("scoreMap puts the threshold exactly at the target tail probability", () => {
    const fit = { u: 10, pu: 0.1, xi: 0.2, xiHat: 0.2, beta: 3, exceedances: 100 };
    const pTarget = 4e-9;
    // Solve p(s) = pTarget for s.
    const s = fit.u + (fit.beta / fit.xi) * ((fit.pu / pTarget) ** fit.xi - 1);
    const m = scoreMap(fit, pTarget, 0.9);
    assert.ok(Math.abs(tailScore(s, m.u, m.k, m.a, m.b) - 0.9) < 1e-9);
    assert.ok(tailScore(s * 0.8, m.u, m.k, m.a, m.b) < 0.9);
    assert.equal(tailScore(s * 100, m.u, m.k, m.a, m.b), 1);
    assert.equal(tailScore(-1e9, m.u, m.k, m.a, m.b), 0);
  });
});
