import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ModelMetrics } from "../retrain/gate.ts";
import { createPlant } from "../signal/mod.ts";
import {
  AUTO_CANDIDATES,
  backtestSettings,
  type CandidateResult,
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

const result = (
  windowSize: number,
  tailMargin: number,
  fa: number,
  fi: number,
  recall: number,
): CandidateResult => ({ windowSize, tailMargin, metrics: metrics(fa, fi), recall });

describe("pickSetting", () => {
  test("pickSetting prefers fewer false incidents over a higher injected recall", () => {
    const { chosen } = pickSetting([result(5, 0.5, 0, 40, 0.9), result(20, 1, 0, 0, 0.6)]);
    assert.deepEqual(chosen, { windowSize: 20, tailMargin: 1 });
  });

  test("pickSetting takes the highest recall among settings with as few false alarms", () => {
    const { chosen } = pickSetting([
      result(5, 0.5, 0, 0, 0.6),
      result(10, 0.5, 500, 0, 0.95),
      result(10, 1, 0.5, 0, 0.8),
    ]);
    assert.deepEqual(chosen, { windowSize: 10, tailMargin: 1 });
  });

  test("pickSetting keeps the earlier candidate on a tie and skips untrained ones", () => {
    const { chosen } = pickSetting([
      { windowSize: 40, tailMargin: 1, skipped: "too short" },
      result(5, 0.5, 0, 0, 0.8),
      result(20, 1, 0, 0, 0.805),
    ]);
    assert.deepEqual(chosen, { windowSize: 5, tailMargin: 0.5 });
    assert.throws(() => pickSetting([{ windowSize: 5, tailMargin: 1, skipped: "x" }]), RangeError);
  });

  test("the candidates start with the training defaults", () => {
    assert.deepEqual(AUTO_CANDIDATES[0], { windowSize: 5, tailMargin: 0.5 });
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
  assert.match(results[1].skipped ?? "", /560 held-in frames, window 30 needs 600/);
});
