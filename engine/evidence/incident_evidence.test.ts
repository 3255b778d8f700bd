import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as v from "valibot";
import { historySchema, relatedSensorSchema } from "../../contracts/alert.ts";
import { defaultFeatureNames } from "../../contracts/model.ts";
import { createPlant } from "../../models/signal/mod.ts";
import type { IncidentEvent, SensorEvidence } from "../../scoring/incident_tracker.ts";
import { type CrossSubspace, relatedSensors } from "../../scoring/related_sensors.ts";
import { HistoryStore } from "./history_store.ts";
import { IncidentEvidence } from "./incident_evidence.ts";
import { crossSubspaceFromOnnx } from "./model_subspace.ts";

const T0 = Date.UTC(2026, 10, 24, 9);
const F = 3;
const evidence = (f: number, severity: number, window = [1, 2, 3, 4, 5]): SensorEvidence => ({
  feature_idx: f,
  score: 1,
  severity,
  statistic: 0,
  window,
});
const event = (
  startedAt: number,
  timestamp: number,
  sensors: SensorEvidence[],
  kind: IncidentEvent["event"] = "opened",
): IncidentEvent => ({
  event: kind,
  incidentId: "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f",
  streamId: "line-1",
  startedAt,
  timestamp,
  sensorCount: sensors.length,
  sensors,
  maxSeverity: sensors[0]?.severity ?? 0,
});
function fed(times: number[]) {
  const store = new HistoryStore({ frames: 300, features: F, maxBytes: 1 << 20 });
  for (const [i, t] of times.entries()) store.record("line-1", t, Float32Array.of(i, 10 * i, 0.5));
  return store;
}
const options = { featureNames: defaultFeatureNames(F), windowSize: 5, maxBytes: 1 << 20 };

test("incidentEvidence carries history across the onset at a steady step", () => {
  const times = Array.from({ length: 10 }, (_, i) => T0 + i * 1000);
  const context = new IncidentEvidence({ ...options, store: fed(times) });
  const out = context.build(event(times[5], times[7], [evidence(1, 9), evidence(0, 8)]));
  const h = out.sensors.get(1)?.history;
  assert.deepEqual(v.safeParse(historySchema, h).issues, undefined);
  assert.deepEqual(h, {
    start: new Date(T0).toISOString(),
    step_ms: 1000,
    values: [0, 10, 20, 30, 40, 50, 60, 70],
    onset: 5,
  });
  assert.equal(h!.values[h!.onset], 50, "the onset marks the first anomalous window's reading");
  assert.deepEqual(out.sensors.get(0)?.history?.values, [0, 1, 2, 3, 4, 5, 6, 7]);
});

test("incidentEvidence reads a sensor stuck since before its onset as the instrument, at the opening alert", () => {
  // Sensor 1 flat from frame 3; the model's first anomalous window is frame 8 and the incident
  // opens at the next (2 of 3): two readings from the onset, fewer than a flat line needs, so
  // the kind is judged on the scored window.
  const store = new HistoryStore({ frames: 300, features: F, maxBytes: 1 << 20 });
  const times = Array.from({ length: 10 }, (_, i) => T0 + i * 1000);
  for (const [i, t] of times.entries()) {
    store.record("line-1", t, Float32Array.of(i, i < 3 ? 40 + i : 42.5, 0.5 + (i % 2)));
  }
  const context = new IncidentEvidence({ ...options, store });
  const out = context.build(
    event(times[8], times[9], [evidence(1, 9, [42.5, 42.5, 42.5, 42.5, 42.5])]),
  );
  assert.equal(out.sensors.get(1)?.history?.onset, 8);
  assert.equal(out.kind, "sensor");
});

test("incidentEvidence gives each reading's time when frames came irregularly", () => {
  const times = [0, 1000, 3000, 4000, 5000, 9000].map((t) => T0 + t);
  const context = new IncidentEvidence({ ...options, store: fed(times) });
  const h = context.build(event(times[3], times[5], [evidence(2, 9)])).sensors.get(2)?.history;
  assert.deepEqual(v.safeParse(historySchema, h).issues, undefined);
  assert.deepEqual(
    h!.timestamps,
    times.map((t) => new Date(t).toISOString()),
  );
  assert.equal(h!.step_ms, 1000, "the median spacing");
  assert.equal(h!.onset, 3);
});

test("incidentEvidence keeps the most severe sensors' history whole under the byte cap", () => {
  const times = Array.from({ length: 50 }, (_, i) => T0 + i * 1000);
  const store = fed(times);
  const whole = new IncidentEvidence({ ...options, store });
  const sensors = [evidence(1, 12), evidence(0, 10), evidence(2, 9)];
  const one = JSON.stringify(
    whole.build(event(times[40], times[49], sensors)).sensors.get(1)!.history,
  ).length;
  const capped = new IncidentEvidence({ ...options, store, maxBytes: one + 12 + 5 });
  const out = capped.build(event(times[40], times[49], sensors));
  assert.equal(out.sensors.get(1)?.history?.values.length, 50, "the most severe keeps it whole");
  assert.equal(out.sensors.get(0)?.history, undefined);
  assert.equal(out.sensors.get(2)?.history, undefined, "after the first that does not fit, none");
});

test("incidentEvidence adds a running level and leaves out an onset no longer kept", () => {
  const times = Array.from({ length: 8 }, (_, i) => T0 + i * 1000);
  const context = new IncidentEvidence({
    ...options,
    store: fed(times),
    baseline: { alpha: 0.5, span: 2, features: [1] },
  });
  const out = context.build(event(times[6], times[7], [evidence(1, 9), evidence(2, 8)]));
  // Level before reading i: (x_{i-1} + 0.5 x_{i-2}) / 1.5, once two earlier readings are kept.
  assert.deepEqual(
    out.sensors.get(1)?.history?.level?.slice(0, 4),
    [null, null, 20 / 3, 50 / 3].map((x) =>
      x === null ? null : Number(Math.fround(x).toPrecision(7)),
    ),
  );
  assert.equal(out.sensors.get(2)?.history?.level, undefined, "no level for other sensors");
  const late = context.build(event(T0 - 5000, times[7], [evidence(1, 9)]));
  assert.equal(late.sensors.get(1), undefined, "an onset older than the kept frames: no history");
  const resolved = context.build({
    ...event(times[6], times[7], [evidence(1, 9)], "resolved"),
    kind: "sensor",
  });
  assert.deepEqual(resolved, { kind: "sensor", sensors: new Map() });
});

// One loading column over the three sensors: 0 leans on 2 (|P| 0.35) more than on 1 (0.25).
const subspace: CrossSubspace = {
  nFeatures: F,
  cols: 1,
  basis: Float32Array.of(0.5, 0.5, 0.7),
  loc: new Float32Array(F),
  invScale: Float32Array.of(1, 1, 1),
};

test("incidentEvidence gives each unflagged partner its readings at the times of the history", () => {
  const times = [0, 1000, 3000, 4000, 5000, 9000].map((t) => T0 + t);
  const context = new IncidentEvidence({ ...options, store: fed(times), subspace });
  const out = context.build(event(times[3], times[5], [evidence(0, 9)]));
  const h = out.sensors.get(0)!.history!;
  const related = out.sensors.get(0)!.related!;
  assert.deepEqual(
    related.map((r) => [r.feature_idx, r.values]),
    [
      [2, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]],
      [1, [0, 10, 20, 30, 40, 50]],
    ],
    "one reading per history value, in the history's order",
  );
  assert.equal(h.timestamps?.length, related[0].values!.length, "on the same irregular times");
  for (const r of related) assert.deepEqual(v.safeParse(relatedSensorSchema, r).issues, undefined);
  // Sensor 2 listed too: its own history carries those readings, so its entry does not.
  const both = context.build(event(times[3], times[5], [evidence(0, 9), evidence(2, 8)]));
  const of0 = both.sensors.get(0)!.related!;
  assert.equal(of0[0].feature_idx, 2);
  assert.equal("values" in of0[0], false);
  assert.deepEqual(of0[1].values, [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(both.sensors.get(2)!.history!.values, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
});

test("incidentEvidence fills partners' readings with the room the whole histories leave", () => {
  const times = Array.from({ length: 50 }, (_, i) => T0 + i * 1000);
  const store = fed(times);
  const whole = new IncidentEvidence({ ...options, store, subspace });
  const e = event(times[40], times[49], [evidence(0, 12)]);
  const full = whole.build(e).sensors.get(0)!;
  const history = JSON.stringify(full.history).length + 12;
  const [closest, next] = full.related!.map((r) => JSON.stringify(r.values).length + 10);
  const at = (maxBytes: number) =>
    new IncidentEvidence({ ...options, store, subspace, maxBytes }).build(e).sensors.get(0)!;
  const one = at(history + closest + next - 1);
  assert.equal(one.history?.values.length, 50, "the sensor's own history first, whole");
  assert.equal(one.related![0].values?.length, 50, "then its closest partner's readings, whole");
  assert.equal(one.related![1].values, undefined, "the next no longer fits: it goes without");
  assert.deepEqual(
    at(history + closest + next).related!.map((r) => r.values?.length),
    [50, 50],
  );
  const none = at(history + closest - 1);
  assert.equal(none.history?.values.length, 50);
  assert.deepEqual(
    none.related!.map((r) => r.values),
    [undefined, undefined],
    "after the first that does not fit, none (never a cut series)",
  );
  const noHistory = at(history - 1);
  assert.equal(noHistory.history, undefined);
  assert.deepEqual(
    noHistory.related!.map((r) => r.values),
    [undefined, undefined],
    "no history: nothing to align readings to",
  );
});

// The committed default model and the simulated plant it was trained on.
const MODEL = new URL("../../models/featurewise_ocsvm", import.meta.url).pathname;

test("incidentEvidence on the plant names a broken relation's partners and reads stuck vs shift", async () => {
  const meta = JSON.parse(await readFile(`${MODEL}.json`, "utf8"));
  const sub = crossSubspaceFromOnnx(await readFile(`${MODEL}.onnx`), meta.n_features);
  assert.ok(sub, "the default graph has a cross-sensor subspace");
  const baseline = new Set<number>(meta.baseline.features);
  // A sensor of the subspace without a running level, and the partners it leans on most.
  let f = 0;
  while (baseline.has(f)) f++;
  const partners = relatedSensors(sub, f, 4).map((p) => p.feature_idx);
  const run = (kind: "stuck" | "level_shift", features: number[]) => {
    const plant = createPlant({ nFeatures: meta.n_features, seed: meta.training.data.plant_seed });
    const store = new HistoryStore({ frames: 60, features: meta.n_features, maxBytes: 64 << 20 });
    const start = 40;
    plant.inject({ kind, features, start, duration: 20, magnitude: 10 });
    const frames: Float32Array[] = [];
    for (let t = 0; t < 50; t++) {
      frames.push(plant.next());
      store.record("line-1", T0 + t * 1000, frames[t]);
    }
    const context = new IncidentEvidence({
      store,
      featureNames: meta.feature_names,
      windowSize: meta.window_size,
      typical: meta.typical,
      baseline: meta.baseline,
      subspace: sub,
      maxBytes: 1 << 20,
    });
    const listed = features.map((g, i) =>
      evidence(
        g,
        20 - i,
        Array.from(frames.slice(45), (row) => row[g]),
      ),
    );
    return context.build(event(T0 + (start + 2) * 1000, T0 + 49_000, listed));
  };
  const stuck = run("stuck", [f]);
  const named = stuck.sensors.get(f)?.related ?? [];
  assert.deepEqual(
    named.map((r) => r.feature_idx),
    partners,
    "the injected sensor's partners are named",
  );
  for (const r of named) assert.ok(Math.abs(r.moved) < 3, `${r.feature} did not move (${r.moved})`);
  const length = stuck.sensors.get(f)!.history!.values.length;
  for (const r of named) assert.equal(r.values?.length, length, `${r.feature}'s readings given`);
  assert.equal(stuck.kind, "sensor", "one sensor stuck: the instrument");
  // The same partners, shifted with it: the relation holds, the process moved.
  const shift = run("level_shift", [f, ...partners]);
  assert.ok(
    shift.sensors.get(f)!.related!.some((r) => Math.abs(r.moved) >= 3),
    "its partners moved with it",
  );
  assert.equal(shift.kind, "process");
});

test("incidentEvidence keeps readings at the ends of float32's range inside the contract", () => {
  const tiny = 2 ** -149;
  const huge = 3.4028234663852886e38;
  const store = new HistoryStore({ frames: 10, features: F, maxBytes: 1 << 20 });
  const times = Array.from({ length: 6 }, (_, i) => T0 + i * 1000);
  for (const [i, t] of times.entries()) {
    store.record("line-1", t, Float32Array.of(i < 3 ? 1 : tiny, i < 3 ? 1 : -tiny, huge));
  }
  const context = new IncidentEvidence({ ...options, store });
  const out = context.build(
    event(times[3], times[5], [evidence(0, 9), evidence(1, 8), evidence(2, 7)]),
  );
  for (const f of [0, 1, 2]) {
    // Through JSON, as the alert body carries it.
    const h = JSON.parse(JSON.stringify(out.sensors.get(f)?.history));
    assert.deepEqual(v.safeParse(historySchema, h).issues, undefined, `sensor ${f}`);
  }
  assert.deepEqual(out.sensors.get(0)?.history?.values, [1, 1, 1, tiny, tiny, tiny]);
  assert.deepEqual(out.sensors.get(1)?.history?.values.slice(3), [-tiny, -tiny, -tiny]);
});
