import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANOMALY_KINDS, createPlant, randomAnomaly } from "./mod.ts";

function frames(plant: ReturnType<typeof createPlant>, count: number): Float32Array[] {
  return Array.from({ length: count }, () => plant.next());
}

describe("createPlant", () => {
  it("createPlant produces identical frames for identical seeds", () => {
    const a = frames(createPlant({ nFeatures: 300, seed: 5, noiseSeed: 9 }), 20);
    const b = frames(createPlant({ nFeatures: 300, seed: 5, noiseSeed: 9 }), 20);
    assert.deepEqual(a, b);
    const c = frames(createPlant({ nFeatures: 300, seed: 5, noiseSeed: 10 }), 20);
    assert.notDeepEqual(a, c);
  });

  it("createPlant gives sensors levels and scales spanning orders of magnitude", () => {
    const plant = createPlant({ nFeatures: 2000 });
    const { std, family } = plant.sensors;
    const logs = Array.from(std, (s) => Math.log10(s)).sort((x, y) => x - y);
    assert.ok(logs[logs.length - 1] - logs[0] > 3, "std spans > 3 decades");
    const counts = [0, 0, 0];
    for (const f of family) counts[f]++;
    assert.ok(
      counts.every((c) => c > 50),
      `every sensor family present: ${counts}`,
    );
    assert.equal(plant.featureNames[1999], "feature_1999");
  });

  it("createPlant keeps each sensor near its stated level and std", () => {
    const plant = createPlant({ nFeatures: 50, noiseSeed: 3 });
    const T = 4000;
    const sum = new Float64Array(50);
    const sq = new Float64Array(50);
    for (let t = 0; t < T; t++) {
      const x = plant.next();
      for (let f = 0; f < 50; f++) {
        const z = (x[f] - plant.sensors.level[f]) / plant.sensors.std[f];
        sum[f] += z;
        sq[f] += z * z;
      }
    }
    for (let f = 0; f < 50; f++) {
      const rms = Math.sqrt(sq[f] / T);
      assert.ok(rms > 0.4 && rms < 2.5, `feature ${f} rms ${rms}`);
    }
  });

  it("createPlant applies an injected level shift and reports it as ground truth", () => {
    const clean = createPlant({ nFeatures: 10, noiseSeed: 1 });
    const dirty = createPlant({ nFeatures: 10, noiseSeed: 1 });
    dirty.inject({ kind: "level_shift", features: [3], start: 5, duration: 4, magnitude: 10 });
    for (let t = 0; t < 12; t++) {
      const a = clean.next();
      const b = dirty.next();
      const inside = t >= 5 && t < 9;
      assert.equal(dirty.activeAnomalies().length, inside ? 1 : 0);
      const expected = inside ? 10 * dirty.sensors.std[3] : 0;
      assert.ok(
        Math.abs(b[3] - a[3] - expected) <= 1e-3 * Math.abs(a[3]) + dirty.sensors.quantum[3],
      );
      assert.equal(b[4], a[4]);
    }
  });

  it("createPlant holds a stuck sensor at its last value", () => {
    const plant = createPlant({ nFeatures: 5, noiseSeed: 2 });
    for (let t = 0; t < 3; t++) plant.next();
    const before = plant.next()[2];
    plant.inject({
      kind: "stuck",
      features: [2],
      start: plant.frameIndex,
      duration: 5,
      magnitude: 0,
    });
    for (let t = 0; t < 5; t++) assert.equal(plant.next()[2], before);
    assert.notEqual(plant.next()[2], before);
  });

  it("createPlant rejects an anomaly scheduled in the past", () => {
    const plant = createPlant({ nFeatures: 5 });
    plant.next();
    assert.throws(
      () => plant.inject({ kind: "spike", features: [0], start: 0, duration: 1, magnitude: 5 }),
      /'start' must be an integer >= 1/,
    );
  });
});

describe("createPlant with anomalies beyond the float32 range", () => {
  const FLOAT32_MAX = 3.4028234663852886e38;

  it("createPlant saturates readings at the float32 limit however large a finite magnitude", () => {
    const plant = createPlant({ nFeatures: 200, noiseSeed: 4 });
    const kinds = ["spike", "level_shift", "drift", "noise_burst"] as const;
    const features = (k: number) => [...Array(200).keys()].filter((f) => f % 4 === k);
    kinds.forEach((kind, k) => {
      const magnitude = k % 2 === 0 ? Number.MAX_VALUE : -1e300;
      plant.inject({ kind, features: features(k), start: 0, duration: 3, magnitude });
    });
    assert.ok(
      plant.sensors.quantum.some((q, f) => q > 0 && f % 4 === 0),
      "a quantised spike",
    );
    for (let t = 0; t < 3; t++) {
      const frame = plant.next();
      const bad = frame.findIndex((x) => !Number.isFinite(x));
      assert.equal(bad, -1, `frame ${t}: feature ${bad} reads ${frame[bad]}`);
      for (const f of features(0)) assert.equal(frame[f], FLOAT32_MAX);
      for (const f of features(1)) assert.equal(frame[f], -FLOAT32_MAX);
    }
  });

  it("createPlant drops the anomalies of the last frame, keeping the frames before as ground truth", () => {
    const clean = createPlant({ nFeatures: 10, noiseSeed: 1 });
    const plant = createPlant({ nFeatures: 10, noiseSeed: 1 });
    plant.inject({ kind: "level_shift", features: [3], start: 2, duration: 10, magnitude: 10 });
    plant.inject({ kind: "spike", features: [4], start: 5, duration: 1, magnitude: 10 });
    for (let t = 0; t < 4; t++) {
      clean.next();
      plant.next();
    }
    const dropped = plant.dropActive();
    assert.deepEqual(
      dropped.map((a) => [a.kind, a.start, a.duration]),
      [["level_shift", 2, 1]],
      "frame 2 carried it; frame 3 is the one not used",
    );
    assert.equal(plant.activeAnomalies(2).length, 1);
    assert.equal(plant.activeAnomalies(3).length, 0);
    assert.equal(plant.next()[3], clean.next()[3], "the shift is gone");
    assert.notEqual(plant.next()[4], clean.next()[4], "a later anomaly still comes");
  });
});

describe("randomAnomaly", () => {
  it("randomAnomaly draws every kind within the plant's features, deterministically", () => {
    const plant = createPlant({ nFeatures: 100 });
    for (const kind of ANOMALY_KINDS) {
      const a = randomAnomaly(11, plant, { kind, start: 10 });
      assert.deepEqual(a, randomAnomaly(11, plant, { kind, start: 10 }));
      assert.equal(a.kind, kind);
      assert.ok(a.features.length >= 1 && a.features.every((f) => f >= 0 && f < 100));
      assert.ok(a.duration >= 1);
      plant.inject(a);
    }
  });
});
