// How often an incident's fault kind (sensor vs process) is right on the simulated plant's injected events.
import type { FaultKind } from "../../contracts/alert.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import { type FaultEvidence, faultKind, kindReadings } from "../../scoring/fault_kind.ts";
import {
  type CrossSubspace,
  relatedSensors,
  standardisedDeviation,
} from "../../scoring/related_sensors.ts";
import { readInitializers } from "../onnx/builder.ts";
import { ANOMALY_DEFAULTS, type AnomalyKind, createPlant, mixSeed, Rng } from "../signal/mod.ts";

/** What each injected kind is: one instrument failing, or the process moving several sensors. */
export const TRUE_KIND: Record<AnomalyKind, FaultKind> = {
  stuck: "sensor",
  spike: "sensor",
  level_shift: "process",
  drift: "process",
  noise_burst: "process",
};

export interface FaultKindOptions {
  meta: ModelMetadata;
  /** The model's graph: its cross-sensor subspace is read from it. */
  onnx: Uint8Array;
  eventsPerKind: number;
  seed: number;
  /** Frames after the onset at which the incident's alert is built (the engine opens in 2). */
  alertAfter?: number;
}

/**
 * Injects `eventsPerKind` events of each kind on the plant the model was trained on, each on a
 * fresh noise day: `stuck` and `spike` on one sensor without a running level; `level_shift`,
 * `drift` and `noise_burst` on a sensor and the three sensors the model's subspace ties it to
 * most (a process moves related sensors together). At `alertAfter` frames past the onset, it
 * judges the kind from the injected sensors as the incident's listed sensors, with the readings
 * from the onset and at least the window (kindReadings), the typical ranges and the related sensors' moves exactly as the engine builds them
 * (engine/evidence). Detection itself is the rest of the evaluation's subject; this scores the
 * verdict given the incident.
 */
export function runFaultKindEval(o: FaultKindOptions) {
  const { meta } = o;
  const F = meta.n_features;
  const W = meta.window_size;
  const after = o.alertAfter ?? 4;
  const init = readInitializers(o.onnx);
  const basis = init.get("crossBasis");
  const loc = init.get("loc");
  const invScale = init.get("invScaleZ");
  if (!basis || !loc || !invScale)
    throw new TypeError("the model's graph has no cross-sensor stage");
  const sub: CrossSubspace = {
    nFeatures: F,
    cols: basis.dims[1],
    basis: basis.data,
    loc: loc.data,
    invScale: invScale.data,
  };
  const baseline = new Set(meta.baseline?.features ?? []);
  const plantSeed = (meta.training.data as { plant_seed: number }).plant_seed;
  const rng = new Rng(mixSeed(o.seed, 0xfa17));
  const byKind: Record<string, { events: number; right: number; as_sensor: number }> = {};
  for (const kind of Object.keys(TRUE_KIND) as AnomalyKind[]) {
    const tally = { events: 0, right: 0, as_sensor: 0 };
    for (let e = 0; e < o.eventsPerKind; e++) {
      let f = rng.int(F);
      while (baseline.has(f)) f = rng.int(F);
      const partners = relatedSensors(sub, f, 3).map((p) => p.feature_idx);
      const features = TRUE_KIND[kind] === "sensor" ? [f] : [f, ...partners];
      const d = ANOMALY_DEFAULTS[kind];
      const sign = kind === "noise_burst" || kind === "stuck" || rng.uniform() < 0.5 ? 1 : -1;
      const magnitude = sign * (d.magnitude[0] + (d.magnitude[1] - d.magnitude[0]) * rng.uniform());
      const duration = Math.max(
        after + 1,
        d.duration[0] + rng.int(d.duration[1] - d.duration[0] + 1),
      );
      const plant = createPlant({ nFeatures: F, seed: plantSeed, noiseSeed: mixSeed(o.seed, e) });
      const start = 30;
      plant.inject({ kind, features, start, duration, magnitude });
      const rows: Float32Array[] = [];
      for (let t = 0; t <= start + after; t++) rows.push(Float32Array.from(plant.next()));
      const series = (j: number, from: number) => rows.slice(from).map((r) => r[j]);
      const facts: FaultEvidence[] = features.map((g) => ({
        // As the engine reads them: from the onset, and at least the window.
        readings: kindReadings(series(g, 0), start, W),
        typical: meta.typical
          ? { low: meta.typical.low[g], high: meta.typical.high[g] }
          : undefined,
        related: relatedSensors(sub, g, 4).map((p) => ({
          weight: p.weight,
          // Partners with a running level would need it; their window mean stands in for it.
          moved: standardisedDeviation(
            sub,
            p.feature_idx,
            series(p.feature_idx, rows.length - W),
            baseline.has(p.feature_idx) ? mean(series(p.feature_idx, 0)) : 0,
          ),
        })),
      }));
      const kindSaid = faultKind(facts);
      tally.events++;
      if (kindSaid === TRUE_KIND[kind]) tally.right++;
      if (kindSaid === "sensor") tally.as_sensor++;
    }
    byKind[kind] = tally;
  }
  const all = Object.values(byKind).reduce(
    (s, t) => ({ events: s.events + t.events, right: s.right + t.right }),
    {
      events: 0,
      right: 0,
    },
  );
  return {
    alert_after_frames: after,
    by_kind: byKind,
    accuracy: all.right / Math.max(1, all.events),
  };
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/** The report's markdown table. */
export function faultKindTable(r: ReturnType<typeof runFaultKindEval>): string {
  const lines = [
    "| injected | true kind | events | kind right | read as sensor |",
    "|---|---|---|---|---|",
  ];
  for (const [kind, t] of Object.entries(r.by_kind)) {
    lines.push(
      `| ${kind} | ${TRUE_KIND[kind as AnomalyKind]} | ${t.events} | ${((100 * t.right) / t.events).toFixed(0)}% | ${t.as_sensor} |`,
    );
  }
  lines.push(`| all | | | ${(100 * r.accuracy).toFixed(0)}% | |`);
  return lines.join("\n");
}
