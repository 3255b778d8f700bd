// The real-data evaluation's arithmetic on hand-computed cases (the published files: real_data.real.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fCdf, fQuantile, normalQuantile } from "./real/fdist.ts";
import { type IncidentSpan, incidentMetrics } from "./real/incidents.ts";
import { invert, symmetricEigen } from "./real/linalg.ts";
import {
  addConfusion,
  budgetThreshold,
  emptyConfusion,
  episodeDetections,
  median,
  rates,
} from "./real/metrics.ts";
import { rollingMedian, t2Ucl } from "./real/peers.ts";

describe("F distribution", () => {
  it("matches published quantiles", () => {
    // F(0.95; 2, 10) = 4.1028 and F(0.99; 2, 10) = 7.5594 (standard tables); F(1, d) = t(d)².
    assert.ok(Math.abs(fQuantile(0.95, 2, 10) - 4.102821) < 1e-5);
    assert.ok(Math.abs(fQuantile(0.99, 2, 10) - 7.559432) < 1e-5);
    assert.ok(Math.abs(fQuantile(0.95, 1, 10) - 2.228139 ** 2) < 1e-4);
    assert.ok(Math.abs(fCdf(fQuantile(0.999, 8, 392), 8, 392) - 0.999) < 1e-12);
    assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-6);
  });

  it("gives the T² control limit of 8 sensors and 400 training rows", () => {
    // m(n-1)(n+1)/(n(n-m)) = 8 * 399 * 401 / (400 * 392) = 8.1612...; F⁻¹(0.999; 8, 392) ≈ 3.3505.
    const koef = (8 * 399 * 401) / (400 * 392);
    assert.ok(Math.abs(t2Ucl(8, 400) - koef * fQuantile(0.999, 8, 392)) < 1e-12);
    // The leaderboard code's grid quantile sits a hair below the exact one.
    const grid = t2Ucl(8, 400, 0.999, "grid");
    assert.ok(grid < t2Ucl(8, 400) && grid > t2Ucl(8, 400) - koef * 0.0016);
  });
});

describe("metric arithmetic", () => {
  it("computes SKAB's F1, FAR and MAR from a pooled confusion matrix", () => {
    const c = emptyConfusion();
    addConfusion(c, [1, 1, 1, 0, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(c, { tp: 3, fp: 1, tn: 5, fn: 1 });
    const r = rates(c);
    // F1 = 3 / (3 + (1 + 1) / 2) = 0.75; FAR = 1 / 6; MAR = 1 / 4.
    assert.equal(r.f1, 0.75);
    assert.equal(r.far, 1 / 6);
    assert.equal(r.mar, 0.25);
  });

  it("finds episodes, their detection and delay", () => {
    const label = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1];
    const alarm = [1, 0, 1, 0, 0, 0, 1, 0, 0, 0];
    const e = episodeDetections(alarm, label);
    assert.deepEqual(e, [
      { start: 1, end: 3, delay: 1 },
      { start: 4, end: 7, delay: 2 },
      { start: 8, end: 10, delay: undefined },
    ]);
    assert.equal(median([1, 2]), 1.5);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([]), undefined);
  });

  it("sets a budget threshold that spends at most the budget on normal frames", () => {
    const scores = Array.from({ length: 100 }, (_, i) => i + 1);
    // 5 % of 100: alarm above 95, i.e. 96..100.
    assert.equal(budgetThreshold(scores, 0.05), 95);
    assert.equal(budgetThreshold(scores, 0.01), 99);
    // A saturated score: ties stay quiet, so the budget is never exceeded.
    const saturated = [1, 1, 1, 1, 1, 1, 1, 1, 1, 2];
    assert.equal(budgetThreshold(saturated, 0.05), 2);
    assert.equal(budgetThreshold(saturated, 0.1), 1);
    assert.throws(() => budgetThreshold(scores, 1), RangeError);
  });

  it("filters with a trailing median as pandas rolling(k).median()", () => {
    const m = rollingMedian(Float64Array.from([5, 1, 3, 2, 4, 6]), 3);
    assert.ok(Number.isNaN(m[0]) && Number.isNaN(m[1]));
    assert.deepEqual(Array.from(m.subarray(2)), [3, 2, 3, 4]);
  });

  it("inverts and diagonalises small matrices", () => {
    const a = Float64Array.from([4, 1, 1, 3]);
    const inv = invert(a, 2);
    // [[4,1],[1,3]]^-1 = [[3,-1],[-1,4]] / 11.
    for (const [i, x] of [3 / 11, -1 / 11, -1 / 11, 4 / 11].entries()) {
      assert.ok(Math.abs(inv[i] - x) < 1e-12);
    }
    const { values } = symmetricEigen(a, 2);
    // Eigenvalues (7 ± sqrt(5)) / 2, descending.
    assert.ok(Math.abs(values[0] - (7 + Math.sqrt(5)) / 2) < 1e-12);
    assert.ok(Math.abs(values[1] - (7 - Math.sqrt(5)) / 2) < 1e-12);
  });

  it("counts incidents per episode, false incidents and the delay to opened", () => {
    // Window 2. Episode rows 5..7; an incident opened at 6 (found, delay 1), a second at 7 (same
    // episode), one at 12 whose window (11, 12) is normal (false).
    const label = new Uint8Array(15);
    label.fill(1, 5, 8);
    const span = (openedRow: number): IncidentSpan => ({
      id: String(openedRow),
      openedRow,
      startedRow: openedRow,
      resolvedRow: openedRow + 1,
      events: 2,
    });
    const spans = new Map([["run", [span(6), span(7), span(12)]]]);
    const alarm = new Uint8Array(15);
    alarm[6] = alarm[7] = alarm[12] = 1;
    const m = incidentMetrics(spans, [{ name: "run", label, testStart: 0, alarm }], 2);
    assert.equal(m.episodes, 1);
    assert.equal(m.episodes_found, 1);
    assert.equal(m.incidents_per_episode, 2);
    assert.equal(m.median_delay_to_opened, 1);
    assert.equal(m.false_incidents, 1);
    // Normal frames: rows whose window (row - 1, row) holds no anomalous row: 15 - 4 = 11.
    assert.equal(m.normal_frames, 11);
    assert.equal(m.false_alarm_frames_per_10k_normal, Math.round((1 / 11) * 1e8) / 1e4);
    assert.equal(m.alerts_per_incident, 2);
    // Frames found the episode (alarms at 6, 7) and so did an incident: nothing lost; but one
    // false incident against one false-alarm frame misses the quarter target.
    assert.equal(m.frame_episodes_detected, 1);
    assert.equal(m.episodes_lost, 0);
    assert.equal(m.episodes_lost_uncovered, 0);
    assert.equal(m.target_met, false);
  });
});
