import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { trainFeaturewise } from "../models/featurewise/train.ts";
import { scoreWindowsDetailed } from "../models/reference/mod.ts";
import { Rng } from "../models/signal/prng.ts";
import { applyToHistory, LevelBaseline, parseLevelBaseline, spanFor } from "./level_baseline.ts";

describe("LevelBaseline", () => {
  it("feeds each listed reading minus the weighted mean of the readings before it", () => {
    const b = new LevelBaseline({ alpha: 0.5, span: 2, features: [1] });
    const raw = new Float32Array(1);
    const frame = Float32Array.of(7, 10);
    b.apply(frame, raw);
    // The first reading is its own level: it reads 0.
    assert.deepEqual([...frame], [7, 0]);
    assert.equal(raw[0], 10);
    const next = Float32Array.of(8, 14);
    b.apply(next, raw);
    assert.deepEqual([...next], [8, 4]);
    assert.equal(raw[0], 14);
    // Level = (1 * 14 + 0.5 * 10) / 1.5 = 12.666...
    const third = Float32Array.of(9, 12);
    b.apply(third, raw);
    assert.ok(Math.abs(third[1] - (12 - 38 / 3)) < 1e-6, `${third[1]}`);
    // Span 2: the 10 has left; level = (1 * 12 + 0.5 * 14) / 1.5 = 12.666...
    const fourth = Float32Array.of(9, 13);
    b.apply(fourth, raw);
    assert.ok(Math.abs(fourth[1] - (13 - 19 / 1.5)) < 1e-6, `${fourth[1]}`);
    assert.equal(b.frames, 4);
  });

  it("a non-finite reading reaches the model but never enters a level, not even the first", () => {
    const b = new LevelBaseline({ alpha: 0.5, span: 4, features: [0] });
    const first = Float32Array.of(Number.NaN);
    b.apply(first);
    assert.ok(Number.isNaN(first[0]));
    const second = Float32Array.of(4);
    b.apply(second);
    assert.equal(second[0], 0, "the first finite reading starts the level");
    const third = Float32Array.of(Number.POSITIVE_INFINITY);
    b.apply(third);
    assert.ok(!Number.isFinite(third[0]));
    const fourth = Float32Array.of(6);
    b.apply(fourth);
    assert.equal(fourth[0], 2, "the level is still 4");
  });

  it("applyToHistory is the stream, frame by frame, and leaves the input alone", () => {
    const F = 3;
    const rng = new Rng(5);
    const values = Float32Array.from({ length: 50 * F }, () => rng.normal());
    const spec = { alpha: 0.2, span: 31, features: [0, 2] };
    const out = applyToHistory(values, F, spec);
    const b = new LevelBaseline(spec);
    for (let t = 0; t < 50; t++) {
      const frame = values.slice(t * F, (t + 1) * F);
      b.apply(frame);
      assert.deepEqual([...out.subarray(t * F, (t + 1) * F)], [...frame]);
    }
    assert.notDeepEqual([...out], [...values]);
  });

  it("a stream rebuilt from its last span readings sees exactly what the whole stream sees", () => {
    assert.equal(spanFor(0.2), 75);
    assert.equal(spanFor(1), 1);
    const spec = { alpha: 0.2, span: spanFor(0.2), features: [0] };
    const rng = new Rng(9);
    // A trend with a gross glitch right where the rebuilt stream starts.
    const series = Float32Array.from({ length: 400 }, (_, t) => 100 + 0.5 * t + rng.normal());
    const start = series.length - 1 - spec.span;
    series[start] += 1e5;
    const whole = new LevelBaseline(spec);
    const late = new LevelBaseline(spec);
    let a = 0;
    let b = 0;
    for (let t = 0; t < series.length; t++) {
      const x = Float32Array.of(series[t]);
      whole.apply(x);
      a = x[0];
      if (t >= start) {
        const y = Float32Array.of(series[t]);
        late.apply(y);
        b = y[0];
      }
    }
    assert.equal(a, b);
  });

  it("parseLevelBaseline rejects what the metadata could not mean", () => {
    assert.throws(
      () => parseLevelBaseline({ alpha: 0, span: 1, features: [] }, 3),
      /baseline\.alpha: must be in/,
    );
    assert.throws(
      () => parseLevelBaseline({ alpha: 0.2, span: 0, features: [] }, 3),
      /baseline\.span: must be/,
    );
    assert.throws(
      () => parseLevelBaseline({ alpha: 0.2, span: 31, features: [2, 1] }, 3),
      /ascending/,
    );
    assert.throws(() => parseLevelBaseline({ alpha: 0.2, span: 31, features: [3] }, 3), /below 3/);
    assert.throws(
      () => parseLevelBaseline({ alpha: 0.2, span: 31, features: [-1] }, 3),
      /ascending/,
    );
    parseLevelBaseline({ alpha: 0.2, span: 31, features: [0, 2] }, 3);
  });
});

describe("a drifting sensor judged against its running level", () => {
  // Six stationary sensors and one that trends through the whole history (a temperature
  // following the weather): 0.01 per frame on noise of 0.1.
  const nF = 7;
  const W = 5;
  const T = 1000;
  const rng = new Rng(31);
  const frameAt = (t: number) => {
    const x = new Float32Array(nF);
    for (let f = 0; f < 6; f++) x[f] = 20 + 0.1 * rng.normal();
    x[6] = 20 + 0.01 * t + 0.1 * rng.normal();
    return x;
  };
  const values = new Float32Array(T * nF);
  for (let t = 0; t < T; t++) values.set(frameAt(t), t * nF);
  const trained = trainFeaturewise(
    { values, nFrames: T, nFeatures: nF },
    { kind: "featurewise_ocsvm_svdd", seed: 3 },
  );

  /** Plays the history, then `extra` frames on, through the baseline; returns the last window. */
  function lastWindow(extra: number, change?: (t: number, x: Float32Array) => void) {
    const b = new LevelBaseline(trained.baseline!);
    const ring: Float32Array[] = [];
    for (let t = 0; t < T + extra; t++) {
      const x = t < T ? values.slice(t * nF, (t + 1) * nF) : frameAt(t);
      change?.(t, x);
      b.apply(x);
      ring.push(x);
      if (ring.length > W) ring.shift();
    }
    const window = new Float32Array(W * nF);
    for (const [i, x] of ring.entries()) window.set(x, i * nF);
    return window;
  }

  it("follows only the drifting sensor, and judges its level again", () => {
    assert.deepEqual(trained.baseline, { alpha: 0.2, span: 75, features: [6] });
    assert.equal(trained.calibration.baseline_features, 1);
    assert.equal(trained.calibration.drifting_features, 0);
  });

  it("the trend going on is not flagged; a step on it is, by its level; a jump, by its dynamics", () => {
    const params = trained.params;
    let d = scoreWindowsDetailed(params, lastWindow(300), 1);
    assert.ok(d.scores[6] < 0.9, `trend continued: score ${d.scores[6]}`);
    // A step of 1 (10 noise sd) as the window starts: the whole window is off the level, which
    // has not taken it in yet; the window's own dynamics are those of noise.
    const step = (t: number, x: Float32Array) => {
      if (t >= T + 295) x[6] += 1;
    };
    d = scoreWindowsDetailed(params, lastWindow(300, step), 1);
    assert.ok(d.scores[6] >= 0.9 && d.statistic[6] === 0, `step: ${d.scores[6]} ${d.statistic[6]}`);
    const jump = (t: number, x: Float32Array) => {
      if (t === T + 299) x[6] += 3;
    };
    d = scoreWindowsDetailed(params, lastWindow(300, jump), 1);
    assert.ok(d.scores[6] >= 0.9, `jump: score ${d.scores[6]}`);
  });
});
