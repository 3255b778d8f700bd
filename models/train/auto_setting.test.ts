import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ModelMetrics } from "../retrain/gate.ts";
import { createPlant } from "../signal/mod.ts";
import {
  AUTO_CANDIDATES,
  backtestSettings,
  type CandidateResult,
  pairedPValue,
  pickSetting,
} from "./auto_setting.ts";

const metrics = (falseAlarms: number, falseIncidents: number): ModelMetrics =>
  ({
    version: "v",
    recent: {
      windows: 1000,
      alarmWindows: 0,
      incidents: 0,
      falseAlarmFramesPer10k: falseAlarms,
      falseIncidentsPer10k: falseIncidents,
    },
    confirmed: { incidents: 0, detected: 0, recall: null },
    injected: {},
  }) as ModelMetrics;

/** A backtested candidate that finds the first `found` of `events` injected events. */
const result = (
  windowSize: number,
  tailMargin: number,
  fa: number,
  fi: number,
  found: number,
  events = 100,
): CandidateResult => {
  const hits = Uint8Array.from({ length: events }, (_, i) => (i < found ? 1 : 0));
  return { windowSize, tailMargin, metrics: metrics(fa, fi), recall: found / events, hits };
};

describe("pickSetting", () => {
  test("pickSetting prefers fewer false incidents over a higher injected recall", () => {
    const { chosen } = pickSetting([result(5, 0.5, 0, 40, 90), result(20, 1, 0, 0, 60)]);
    assert.deepEqual(chosen, { windowSize: 20, tailMargin: 1 });
  });

  test("pickSetting takes the setting that finds significantly the most among the quietest", () => {
    const { chosen, reason } = pickSetting([
      result(5, 0.5, 0, 0, 60),
      result(10, 0.5, 500, 0, 95),
      result(10, 1, 0.5, 0, 75),
      result(15, 1, 0, 0, 80),
    ]);
    assert.deepEqual(chosen, { windowSize: 15, tailMargin: 1 });
    assert.match(
      reason,
      /finds 80 injected events, 60 with window 5, tail margin 0.5 \(p = 0.000\)/,
    );
  });

  test("pickSetting leaves the defaults only for a significant gain in found events", () => {
    // 62 against 55 of the same 100 events: 7 gained, none lost, p = 1/128 < 0.05 ...
    assert.deepEqual(pickSetting([result(5, 0.5, 0, 0, 55), result(15, 0.5, 0, 0, 62)]).chosen, {
      windowSize: 15,
      tailMargin: 0.5,
    });
    // ... but gaining 9 events while losing 5 others (p = 0.21) is no evidence.
    const reference = result(5, 0.5, 0, 0, 54);
    const other = result(15, 0.5, 0, 0, 0);
    other.hits = Uint8Array.from(reference.hits as Uint8Array);
    for (let i = 0; i < 5; i++) other.hits[i] = 0;
    for (let i = 54; i < 63; i++) other.hits[i] = 1;
    const { chosen, reason } = pickSetting([reference, other]);
    assert.deepEqual(chosen, { windowSize: 5, tailMargin: 0.5 });
    assert.match(reason, /no setting as quiet finds significantly more injected events/);
  });

  test("pickSetting keeps the earlier candidate on a tie and skips untrained ones", () => {
    const { chosen } = pickSetting([
      { windowSize: 40, tailMargin: 1, skipped: "too short" },
      result(5, 0.5, 0, 0, 30),
      result(10, 0.5, 0, 0, 80),
      result(20, 1, 0, 0, 80),
    ]);
    assert.deepEqual(chosen, { windowSize: 10, tailMargin: 0.5 });
    assert.throws(() => pickSetting([{ windowSize: 5, tailMargin: 1, skipped: "x" }]), RangeError);
  });

  test("the candidates start with the training defaults", () => {
    assert.deepEqual(AUTO_CANDIDATES[0], { windowSize: 5, tailMargin: 0.5 });
  });
});

describe("pairedPValue", () => {
  const events = (xs: number[]) => Uint8Array.from(xs);
  const close = (actual: number, expected: number) =>
    assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} != ${expected}`);

  test("pairedPValue is the sign test's one-sided tail over the events only one setting finds", () => {
    close(pairedPValue(events([0, 0, 0, 0, 0, 1]), events([1, 1, 1, 1, 1, 1])), 1 / 32);
    close(pairedPValue(events([1, 0, 1]), events([0, 1, 1])), 0.75);
    close(pairedPValue(events([1, 0]), events([1, 0])), 1);
    close(pairedPValue(events([1, 1, 1]), events([0, 0, 0])), 1);
  });

  test("pairedPValue stays finite for thousands of events", () => {
    const n = 4000;
    const reference = Uint8Array.from({ length: n }, (_, i) => i % 2);
    const challenger = Uint8Array.from({ length: n }, (_, i) => (i % 2 || i % 3 === 0 ? 1 : 0));
    const p = pairedPValue(reference, challenger);
    assert.ok(p >= 0 && p < 1e-100, `p = ${p}`);
    assert.ok(Math.abs(pairedPValue(challenger, reference) - 1) < 1e-12);
  });
});

test("backtestSettings scores each candidate on the held-out stretch and skips windows too long for the rest", async () => {
  const F = 6;
  const T = 700;
  const plant = createPlant({ nFeatures: F, seed: 11, noiseSeed: 3 });
  const values = new Float32Array(T * F);
  for (let t = 0; t < T; t++) values.set(plant.next(), t * F);
  const { results, holdout } = await backtestSettings(
    { values, nFrames: T, nFeatures: F },
    {
      candidates: [
        { windowSize: 5, tailMargin: 0.5 },
        { windowSize: 30, tailMargin: 1 },
      ],
      eventsPerKind: 2,
    },
  );
  assert.deepEqual(holdout, { frames: 140, trainFrames: 560, events: 10 });
  assert.ok(results[0].metrics, "window 5 is backtested");
  assert.equal(results[0].metrics.recent.windows, 140 - 5 + 1);
  assert.ok((results[0].recall as number) > 0, "half-size anomalies are found at all");
  const hits = results[0].hits as Uint8Array;
  const detected = Object.values(results[0].metrics.injected).reduce((a, k) => a + k.detected, 0);
  assert.equal(hits.length, 10, "one outcome per injected event");
  assert.equal(
    hits.reduce((a, b) => a + b, 0),
    detected,
    "the per-event outcomes add up to the per-kind tallies",
  );
  assert.match(results[1].skipped ?? "", /560 held-in frames, window 30 needs 600/);
});
