import assert from "node:assert/strict";
import { test } from "node:test";
import { formatRunningCondition, isRunning, parseRunningCondition } from "./running_condition.ts";

test("parseRunningCondition reads SENSOR op VALUE", () => {
  assert.deepEqual(parseRunningCondition("speed_rpm>100"), {
    feature: "speed_rpm",
    op: ">",
    value: 100,
  });
  assert.deepEqual(parseRunningCondition(" flow <= -2.5e1 "), {
    feature: "flow",
    op: "<=",
    value: -25,
  });
  assert.equal(formatRunningCondition(parseRunningCondition("a>=1.5")), "a>=1.5");
});

test("parseRunningCondition refuses anything else, quoting it", () => {
  for (const bad of ["speed", "speed>", ">5", "speed=5", "speed>5x", "a b>5"]) {
    assert.throws(() => parseRunningCondition(bad), /must read SENSOR>X/);
  }
});

test("isRunning compares the reading; a non-finite reading counts as running", () => {
  const c = parseRunningCondition("speed>100");
  assert.equal(isRunning(c, 150), true);
  assert.equal(isRunning(c, 100), false);
  assert.equal(isRunning(parseRunningCondition("speed>=100"), 100), true);
  assert.equal(isRunning(parseRunningCondition("temp<5"), 4), true);
  assert.equal(isRunning(c, Number.NaN), true);
});
