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
  for (const bad of ["speed", "speed>", ">5", "speed=5", "speed>5x", " <= 3"]) {
    assert.throws(() => parseRunningCondition(bad), /must read SENSOR>X/);
  }
});

test("parseRunningCondition says which part of the text is wrong", () => {
  assert.throws(() => parseRunningCondition("speed=5"), /: it has no operator$/);
  assert.throws(() => parseRunningCondition(">5"), /: no sensor name before '>'$/);
  assert.throws(() => parseRunningCondition("speed>"), /: "" after '>' is not a number$/);
  assert.throws(() => parseRunningCondition("speed>=5x"), /: "5x" after '>=' is not a number$/);
});

test("parseRunningCondition reads sensor names with spaces, brackets and operators in them", () => {
  assert.deepEqual(parseRunningCondition("Motor Speed [rpm]>100"), {
    feature: "Motor Speed [rpm]",
    op: ">",
    value: 100,
  });
  assert.deepEqual(parseRunningCondition(" a b <= 2 "), { feature: "a b", op: "<=", value: 2 });
  // The last operator splits: the ones before it belong to the name.
  assert.deepEqual(parseRunningCondition("x<y=z>=0.5"), { feature: "x<y=z", op: ">=", value: 0.5 });
  assert.deepEqual(parseRunningCondition("valve>open<1"), {
    feature: "valve>open",
    op: "<",
    value: 1,
  });
});

test("formatRunningCondition round-trips names that hold operators", () => {
  for (const feature of ["Motor Speed [rpm]", "a<", "a>", "a>=", "=b", "p<=q"]) {
    for (const op of [">", ">=", "<", "<="] as const) {
      for (const value of [100, -2.5, 1e21, 3e-7]) {
        const c = { feature, op, value };
        assert.deepEqual(parseRunningCondition(formatRunningCondition(c)), c);
      }
    }
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
