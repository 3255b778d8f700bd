import assert from "node:assert/strict";
import { test } from "node:test";
import { faultKind, instrumentSign, kindReadings } from "./fault_kind.ts";

const typical = { low: 9, high: 11 };
const noisy = (n: number, at = 10) => Array.from({ length: n }, (_, i) => at + 0.3 * Math.sin(i));

test("faultKind reads a flat line as a sensor fault", () => {
  const stuck = [...noisy(20), 10.2, 10.2, 10.2, 10.2, 10.2, 10.2];
  assert.equal(instrumentSign({ readings: stuck, typical }), "flat");
  assert.equal(faultKind([{ readings: stuck, typical }]), "sensor");
});

test("faultKind reads non-finite readings as a sensor fault", () => {
  assert.equal(faultKind([{ readings: [10, Number.NaN, 10.1] }]), "sensor");
});

test("faultKind reads a lone reading far outside training as a sensor fault", () => {
  const spike = [...noisy(10), 40, ...noisy(3)];
  const quietPartners = [
    { weight: 0.4, moved: 0.5 },
    { weight: 0.2, moved: -1.1 },
  ];
  assert.equal(faultKind([{ readings: spike, typical, related: quietPartners }]), "sensor");
});

test("faultKind reads an overload value as a sensor fault whatever its related sensors do", () => {
  const echo = [
    { weight: 0.4, moved: 3.4 },
    { weight: 0.2, moved: 0.1 },
  ];
  for (const dead of [9.9e37, -3.4028234663852886e38, 2e19]) {
    const readings = [...noisy(10), dead, dead, dead, dead];
    assert.equal(instrumentSign({ readings, typical, related: echo }), "overload", `${dead}`);
    assert.equal(faultKind([{ readings, typical, related: echo }]), "sensor", `${dead}`);
  }
  assert.equal(instrumentSign({ readings: [1e18] }), "overload", "no typical range: units of 1");
  const big = { low: 1e3, high: 2e3 };
  assert.equal(instrumentSign({ readings: [1e20], typical: big, related: echo }), undefined);
  assert.equal(instrumentSign({ readings: [3e21], typical: big }), "overload", "by its magnitude");
  const unknown = { low: Number.NaN, high: Number.NaN };
  assert.equal(instrumentSign({ readings: [9.9e37], typical: unknown }), "overload");
  // A large but physical move that partners echo stays the process's: a setpoint 1,000 typical
  // ranges away.
  const setpoint = [...noisy(10), 2000, 2000.1, 1999.9, 2000.2, 2000];
  assert.equal(faultKind([{ readings: setpoint, typical, related: echo }]), "process");
});

test("faultKind reads a shift that related sensors echo as a process fault", () => {
  const shifted = [...noisy(10), ...noisy(10, 40)];
  const movedPartners = [
    { weight: 0.4, moved: 7.5 },
    { weight: 0.2, moved: 0.1 },
  ];
  assert.equal(instrumentSign({ readings: shifted, typical, related: movedPartners }), undefined);
  assert.equal(faultKind([{ readings: shifted, typical, related: movedPartners }]), "process");
});

test("faultKind reads a shift within a range of its training range as a process fault", () => {
  assert.equal(faultKind([{ readings: [...noisy(10), ...noisy(10, 12.5)], typical }]), "process");
});

test("faultKind wants every one of the most severe sensors to look instrumental", () => {
  const stuck = { readings: [5, 5, 5, 5, 5, 5], typical };
  const moving = { readings: noisy(10, 12), typical };
  assert.equal(faultKind([stuck, stuck]), "sensor");
  assert.equal(faultKind([stuck, moving]), "process");
  assert.equal(faultKind([]), "process", "nothing listed: no instrument to blame");
});

test("kindReadings gives the readings from the onset, and at least the window", () => {
  assert.deepEqual(kindReadings([1, 2, 4, 4, 4, 4, 4], 5, 5), [4, 4, 4, 4, 4]);
  assert.deepEqual(kindReadings([1, 2, 3, 4, 5, 6, 7], 1, 5), [2, 3, 4, 5, 6, 7]);
  assert.deepEqual(kindReadings([1, 2, 3], 2, 5), [1, 2, 3], "a history shorter than the window");
});
