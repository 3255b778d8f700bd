import assert from "node:assert/strict";
import { test } from "node:test";
import { observedWindow, rankFlagged, sensorEvidence, severityScale } from "./flagged_sensors.ts";
import { keepEvidence, WindowShape } from "./window_features.ts";

test("rankFlagged lists flagged sensors by severity, then score, then index", () => {
  const scores = Float32Array.of(0.95, 0.1, 1, Number.NaN, 0.9, 1);
  const severity = Float32Array.of(9.5, 1, 30, 50, 9, 12);
  const out = new Int32Array(8);
  assert.equal(rankFlagged({ scores, severity }, 6, 0.9, 10, out, 2), 5);
  assert.deepEqual([...out.subarray(2, 7)], [3, 2, 5, 0, 4], "NaN flags; 0.9 meets 0.9");
  const derived = new Int32Array(6);
  rankFlagged({ scores }, 6, 0.9, 10, derived);
  assert.deepEqual(
    [...derived.subarray(0, 5)],
    [3, 2, 5, 0, 4],
    "a sensor the graph could not score first; ties at score 1 by index",
  );
});

test("a sensor the graph could not score (NaN: it overflowed on the reading) is flagged first, at the highest severity", () => {
  const scores = Float32Array.of(0.1, Number.NaN, 1, 0.2);
  const severity = Float32Array.of(1, Number.NaN, 400, 2);
  const out = new Int32Array(4);
  assert.equal(rankFlagged({ scores, severity }, 4, 0.9, 10, out), 2);
  assert.deepEqual([...out.subarray(0, 2)], [1, 2]);
  const e = sensorEvidence({ scores, severity }, 1, 10, [9.9e37]);
  assert.deepEqual([e.score, e.severity], [1, 1000]);
  const derived = sensorEvidence({ scores }, 1, 10, [9.9e37]);
  assert.deepEqual([derived.score, derived.severity], [1, 1000]);
  // More flagged than listed: it still comes first.
  const many = new Float32Array(50).fill(1);
  many[37] = Number.NaN;
  const top = new Int32Array(50);
  const fives = new Float32Array(50).fill(5);
  fives[37] = Number.NaN;
  rankFlagged({ scores: many, severity: fives }, 50, 0.9, 10, top, 0, 3);
  assert.equal(top[0], 37);
});

test("rankFlagged returns 0 and writes nothing for a quiet window", () => {
  const out = new Int32Array(3).fill(-7);
  assert.equal(rankFlagged({ scores: Float32Array.of(0.1, 0.2, 0.3) }, 3, 0.9, 10, out), 0);
  assert.deepEqual([...out], [-7, -7, -7]);
});

test("severityScale turns a calibrated score into -log10 p from the calibration metadata", () => {
  const calibration = { threshold: 0.9, p_target_per_statistic: 1e-9 };
  const scale = severityScale({ score: { semantics: "", calibration } });
  assert.ok(Math.abs(0.9 * scale - 9) < 1e-12, "score at the threshold = p_target");
  assert.equal(severityScale({ score: { semantics: "", calibration: {} } }), 1);
});

test("sensorEvidence derives severity when the model has no severity output", () => {
  const e = sensorEvidence({ scores: Float32Array.of(0.5, 0.95) }, 1, 10, [1, 2]);
  assert.deepEqual(e, {
    feature_idx: 1,
    score: 0.95,
    severity: 9.5,
    statistic: -1,
    window: [1, 2],
  });
});

test("observedWindow picks each flagged sensor's readings out of a [window, features] input", () => {
  const values = [1, 10, 100, 2, 20, 200, 3, 30, 300];
  const w = observedWindow("s", 5, { scores: [0.1, 1, 0.95] }, values, {
    nFeatures: 3,
    windowSize: 3,
    threshold: 0.9,
    scale: 10,
    maxFeatures: 1,
  });
  assert.deepEqual(Array.from(w.flagged), [1, 2]);
  assert.equal(w.evidence.length, 1, "evidence capped, count kept");
  assert.deepEqual(w.evidence[0].window, [10, 20, 30]);
});

test("sensorEvidence keeps an infinite or missing severity a finite number", () => {
  const row = (x: number) => ({ scores: Float32Array.of(1), severity: Float32Array.of(x) });
  assert.equal(sensorEvidence(row(Number.POSITIVE_INFINITY), 0, 10, [1]).severity, 1000);
  assert.equal(sensorEvidence(row(Number.NaN), 0, 10, [1]).severity, 0, "scored, severity lost");
});

test("rankFlagged orders only the most severe when more are flagged than listed", () => {
  const n = 5000;
  const scores = new Float32Array(n).fill(1);
  const severity = Float32Array.from({ length: n }, (_, f) => (f * 7919) % n);
  severity[42] = 4999; // a tie with feature 4999 * 7919 % 5000's sensor, broken by index
  const out = new Int32Array(n);
  assert.equal(rankFlagged({ scores, severity }, n, 0.9, 1, out, 0, 10), n);
  const all = Array.from({ length: n }, (_, f) => f).sort(
    (a, b) => severity[b] - severity[a] || a - b,
  );
  assert.deepEqual(Array.from(out.subarray(0, 10)), all.slice(0, 10));
  assert.deepEqual(
    Array.from(out).sort((a, b) => a - b),
    Array.from({ length: n }, (_, f) => f),
    "every flagged sensor is still there",
  );
});

test("rankFlagged keeps the most severe first without a severity output, whatever float32 rounds", () => {
  // Severity is score * scale in doubles: keys rounded to float32 lost the k-th and its ties.
  const scale = 10.107678;
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let trial = 0; trial < 2000; trial++) {
    const scores = Float32Array.from({ length: 4 }, () => 0.9 + random() * 0.1);
    const out = new Int32Array(4);
    rankFlagged({ scores }, 4, 0.9, scale, out, 0, 2);
    const want = [0, 1, 2, 3].sort((a, b) => scores[b] - scores[a] || a - b).slice(0, 2);
    assert.deepEqual(Array.from(out.subarray(0, 2)), want, `scores ${Array.from(scores)}`);
  }
});

test("keepEvidence gives an alert the readings as they arrived and the running level beside them", () => {
  const shape = WindowShape.forModel({
    window_size: 2,
    n_features: 3,
    baseline: { description: "", alpha: 0.5, span: 4, features: [2] },
  });
  // What the model saw ([window, features]) and feature 2's readings as they arrived.
  const input = Float32Array.of(1, 2, 0.5, 3, 4, 1.5);
  const raw = Float32Array.of(100.5, 102.5);
  const windows = new Float32Array(4);
  const levelsOut = new Float32Array(2);
  keepEvidence(shape, input, raw, Int32Array.of(2, 0), windows, levelsOut);
  assert.deepEqual([...windows], [100.5, 102.5, 1, 3]);
  assert.equal(levelsOut[0], 101);
  assert.ok(Number.isNaN(levelsOut[1]));
  const e = sensorEvidence({ scores: Float32Array.of(0, 0, 0.95) }, 2, 10, [100.5, 102.5], 101);
  assert.equal(e.level, 101);
  assert.equal(sensorEvidence({ scores: Float32Array.of(0.95) }, 0, 10, [1]).level, undefined);
});
