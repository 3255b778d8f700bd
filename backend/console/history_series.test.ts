import assert from "node:assert/strict";
import { test } from "node:test";
import { chartSeries, rangeOf } from "./history_series.ts";

const start = "2026-11-24T09:00:00.000Z";
const t0 = Date.parse(start) / 1000;

test("chartSeries places steady readings at start + i·step and the onset at its reading's time", () => {
  const s = chartSeries({
    start,
    step_ms: 500,
    values: [1, 2, 9],
    onset: 2,
    level: [null, 1, 1.5],
  });
  assert.deepEqual(s.t, [t0, t0 + 0.5, t0 + 1]);
  assert.deepEqual(s.values, [1, 2, 9]);
  assert.deepEqual(s.level, [null, 1, 1.5]);
  assert.equal(s.onset, t0 + 1);
  assert.equal(s.readings, 3);
});

test("chartSeries uses each reading's own timestamp when frames were irregular", () => {
  const timestamps = [start, "2026-11-24T09:00:04.000Z", "2026-11-24T09:00:05.250Z"];
  const s = chartSeries({ start, step_ms: 1000, values: [1, 2, 3], onset: 1, timestamps });
  assert.deepEqual(s.t, [t0, t0 + 4, t0 + 5.25]);
  assert.equal(s.onset, t0 + 4);
  assert.equal("level" in s, false);
});

test("chartSeries thins a long history but keeps spikes, dips, the onset and the latest reading", () => {
  const values = Array.from({ length: 86_400 }, (_, i) => Math.sin(i / 500));
  values[12_345] = 100;
  values[54_321] = -100;
  const s = chartSeries({ start, step_ms: 1000, values, onset: 70_001 }, 2000);
  assert.ok(s.t.length <= 2000, `${s.t.length} points`);
  assert.ok(s.t.length > 1500, `${s.t.length} points`);
  assert.ok(s.values.includes(100) && s.values.includes(-100));
  assert.ok(s.t.includes(t0 + 70_001), "the onset reading is kept");
  assert.equal(s.t.at(-1), t0 + 86_399);
  assert.equal(s.values.at(-1), Number(values.at(-1)!.toPrecision(6)), "to six digits");
  assert.equal(s.readings, 86_400);
  for (let i = 1; i < s.t.length; i++) assert.ok(s.t[i] > s.t[i - 1], "times strictly increase");
});

test("rangeOf gives the lowest and highest reading of a range, null when it is empty", () => {
  assert.deepEqual(rangeOf([3, 1, 4, 1, 5], 1, 4), [1, 4]);
  assert.equal(rangeOf([3, 1], 2, 2), null);
});
