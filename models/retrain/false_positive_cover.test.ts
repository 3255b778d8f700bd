// Which injected anomalies operators' false-positive verdicts cover: distance kinds within the reach they judged normal, on the sensors they widened.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type AnomalySpec, Rng } from "../signal/mod.ts";
import {
  coveringReach,
  falsePositiveCover,
  LISTED_WIDENED_MAX,
  leaveOutCovered,
  listedLeftOut,
} from "./false_positive_cover.ts";
import { applyAnomaly, type InjectedEvent, LEAD_FRAMES } from "./inject.ts";

const F = 3;
const T = 1000;
const std = Float64Array.from([1, 1, 1]);

/**
 * Unit-normal sensors around 0; rows 600..659 judged a false positive, with sensor 1 lifted by
 * 10 std there (the operators' "cleaning cycle") and sensors 0 and 2 as usual.
 */
function history() {
  const rng = new Rng(7);
  const values = new Float32Array(T * F);
  const falsePositive = new Uint8Array(T);
  for (let t = 0; t < T; t++) {
    for (let f = 0; f < F; f++) values[t * F + f] = rng.normal();
    if (t >= 600 && t < 660) {
      falsePositive[t] = 1;
      values[t * F + 1] += 10;
    }
  }
  return { values, nFrames: T, falsePositive };
}

/** `spec` injected into 300 quiet frames as the gate does, from `LEAD_FRAMES`. */
function event(spec: Omit<AnomalySpec, "start">): InjectedEvent {
  const rng = new Rng(3);
  const frames = Array.from({ length: 300 }, () =>
    Float32Array.from({ length: F }, () => 0.5 * rng.normal()),
  );
  const full = { ...spec, start: LEAD_FRAMES };
  applyAnomaly(frames, LEAD_FRAMES, full, std, rng);
  return { spec: full, frames, timestamps: frames.map((_, i) => i), start: LEAD_FRAMES };
}

describe("falsePositiveCover", () => {
  const cover = falsePositiveCover(history(), std);

  test("names only the sensors the false positives took beyond their clean range, with both reaches", () => {
    assert.deepEqual(
      cover.sensors.map((s) => s.feature),
      [1],
    );
    const [reach] = cover.sensors;
    assert.ok(reach.clean > 2 && reach.clean < 5, String(reach.clean));
    assert.ok(reach.judgedNormal > 10 && reach.judgedNormal < 14, String(reach.judgedNormal));
  });

  test("covers a level shift, spike, drift or noise burst within the judged reach, in either direction", () => {
    for (const spec of [
      { kind: "level_shift", magnitude: 8, duration: 100 },
      { kind: "level_shift", magnitude: -8, duration: 100 },
      { kind: "spike", magnitude: 9, duration: 2 },
      { kind: "drift", magnitude: -9, duration: 150 },
      { kind: "noise_burst", magnitude: 3, duration: 40 },
    ] as const) {
      assert.equal(
        coveringReach(event({ ...spec, features: [1] }), cover)?.feature,
        1,
        JSON.stringify(spec),
      );
    }
  });

  test("still counts a larger event, a stuck sensor, and any event on a sensor no verdict widened", () => {
    for (const spec of [
      { kind: "level_shift", magnitude: 16, duration: 100, features: [1] },
      { kind: "spike", magnitude: -20, duration: 1, features: [1] },
      { kind: "stuck", magnitude: 0, duration: 100, features: [1] },
      { kind: "level_shift", magnitude: 8, duration: 100, features: [0] },
      { kind: "spike", magnitude: 9, duration: 2, features: [2] },
    ] satisfies Omit<AnomalySpec, "start">[]) {
      assert.equal(coveringReach(event(spec), cover), undefined, JSON.stringify(spec));
    }
  });

  test("a history without false positives covers nothing", () => {
    const h = history();
    h.falsePositive.fill(0);
    const none = falsePositiveCover(h, std);
    assert.deepEqual(none.sensors, []);
    const e = event({ kind: "level_shift", magnitude: 8, duration: 100, features: [1] });
    assert.equal(coveringReach(e, none), undefined);
  });
});

test("leaveOutCovered keeps the events to count in order and tallies the rest by sensor and kind", () => {
  const cover = falsePositiveCover(history(), std);
  const events = [
    event({ kind: "level_shift", magnitude: 8, duration: 100, features: [1] }),
    event({ kind: "level_shift", magnitude: 8, duration: 100, features: [0] }),
    event({ kind: "spike", magnitude: -9, duration: 1, features: [1] }),
    event({ kind: "stuck", magnitude: 0, duration: 100, features: [1] }),
  ];
  const { counted, leftOut } = leaveOutCovered(events, cover);
  assert.deepEqual(counted, [events[1], events[3]]);
  assert.equal(leftOut.events, 2);
  assert.equal(leftOut.sensors.length, 1);
  const [sensor] = leftOut.sensors;
  assert.equal(sensor.feature_idx, 1);
  assert.equal(sensor.events, 2);
  assert.deepEqual(sensor.by_kind, { level_shift: 1, spike: 1 });
});

test("listedLeftOut names the sensors that left events out and the most widened others, at most 50, and counts them all", () => {
  // A verdict on a plant-wide upset widens every sensor: 25,000 of them, events left out on two.
  const sensors = Array.from({ length: 25_000 }, (_, f) => ({
    feature_idx: f,
    clean_std: 4,
    judged_normal_std: 4 + (f % 1000) / 100,
    events: f === 7 || f === 24_000 ? 1 : 0,
    by_kind: f === 7 || f === 24_000 ? { spike: 1 } : {},
  }));
  const names = sensors.map((s) => `s${s.feature_idx}`);
  const listed = listedLeftOut(sensors, names);
  assert.equal(listed.widened, 25_000);
  assert.equal(listed.sensors.length, LISTED_WIDENED_MAX);
  const features = listed.sensors.map((s) => s.feature_idx);
  assert.ok(features.includes(7) && features.includes(24_000));
  assert.deepEqual(
    features,
    [...features].sort((a, b) => a - b),
  );
  // The others listed are the most widened (f % 1000 = 999, 998, ...).
  assert.ok(listed.sensors.filter((s) => s.events === 0).every((s) => s.feature_idx % 1000 >= 990));
  assert.equal(listed.sensors.find((s) => s.feature_idx === 7)?.feature, "s7");
  // Few widened sensors: all of them, in sensor order.
  const few = listedLeftOut(sensors.slice(0, 3).reverse(), names);
  assert.deepEqual(
    few.sensors.map((s) => s.feature),
    ["s0", "s1", "s2"],
  );
  assert.equal(few.widened, 3);
});
