// Measures incident settings on the simulated plant through the committed model: run with `npx tsx engine/bench/incidents.ts`.
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { parseModelMetadata } from "../../contracts/model.ts";
import { streamWindows } from "../../models/eval/run.ts";
import type { Scorer } from "../../models/eval/scorers.ts";
import {
  ANOMALY_KINDS,
  type AnomalySpec,
  createPlant,
  mixSeed,
  Rng,
  randomAnomaly,
} from "../../models/signal/mod.ts";
import { rankFlagged, sensorEvidence, severityScale } from "../../scoring/flagged_sensors.ts";
import {
  type IncidentEvent,
  IncidentTracker,
  type ObservedWindow,
  type SensorEvidence,
} from "../../scoring/incident_tracker.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "models/featurewise_ocsvm" },
    clean: { type: "string", default: "10000" },
    "events-per-kind": { type: "string", default: "8" },
    seed: { type: "string", default: "13" },
    json: { type: "string" },
  },
});

const FRAME_MS = 1000;
const MAX_FEATURES = 1000;
/** Frames between one event's last window and the next event: longer than any quiet setting. */
const GAP = 130;
const SETTINGS = {
  confirm: [
    [1, 1],
    [2, 2],
    [2, 3],
    [3, 5],
  ],
  quiet: [5, 10, 20, 30, 60],
  /** `updated` throttles tried at the chosen confirmation and quiet windows. */
  update: [0, 30_000, 60_000, 120_000, 300_000],
  /** Severity rises (-log10) worth an update, tried at the chosen throttle. */
  rise: [1, 4, 8],
};
/** The defaults this measurement chose (engine README): the update throttle table uses them. */
const CHOSEN = { k: 2, n: 3, quiet: 30, update: 120_000 };

const metaPath = `${args.model}.json`;
const meta = parseModelMetadata(JSON.parse(await readFile(metaPath, "utf8")));
const W = meta.window_size;
const F = meta.n_features;
const threshold = meta.default_threshold;
const scale = severityScale(meta);
// The model's own session, so the severity and statistic outputs are read as the engine reads them.
const session = await ort.InferenceSession.create(await readFile(`${args.model}.onnx`), {
  intraOpNumThreads: 2,
});
/** The last scored batch's optional outputs, and the next row the visitor reads from them. */
let extra: { severity?: Float32Array; statistic?: BigInt64Array | Float32Array } = {};
let nextRow = 0;
const scorer: Scorer = {
  name: meta.name,
  description: meta.version,
  threshold,
  baseline: meta.baseline,
  async score(windows, batch) {
    const input = new ort.Tensor("float32", windows.subarray(0, batch * W * F), [batch, W, F]);
    const out = await session.run({ [meta.input_name]: input });
    const sev = meta.severity_output_name;
    const stat = meta.statistic_output_name;
    extra = {
      severity: sev ? (out[sev].data as Float32Array) : undefined,
      statistic: stat ? (out[stat].data as BigInt64Array | Float32Array) : undefined,
    };
    nextRow = 0;
    return out[meta.output_name].data as Float32Array;
  },
};
const seed = Number(args.seed);
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Scores `n` windows of `plant` and keeps what the tracker needs of each (few flag anything). */
async function record(plant: ReturnType<typeof createPlant>, n: number): Promise<ObservedWindow[]> {
  const out: ObservedWindow[] = [];
  const idx = new Int32Array(F);
  const started = performance.now();
  await streamWindows(plant, n, W, [scorer], (t, _s, scores) => {
    // Windows are visited in batch order, one scorer: row b of the last batch.
    const b = nextRow++;
    const row = {
      scores,
      severity: extra.severity?.subarray(b * F, (b + 1) * F),
      // int64 indices: `sensorEvidence` reads them through Number(), bigint included.
      statistic: extra.statistic?.subarray(b * F, (b + 1) * F) as unknown as ArrayLike<number>,
    };
    const count = rankFlagged(row, F, threshold, scale, idx, 0, MAX_FEATURES);
    const flagged = idx.slice(0, count);
    const evidence: SensorEvidence[] = [];
    for (let j = 0; j < Math.min(count, MAX_FEATURES); j++)
      evidence.push(sensorEvidence(row, flagged[j], scale, []));
    out.push({ streamId: "plant", timestamp: t * FRAME_MS, flagged, evidence });
  });
  log(`  scored ${n} windows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

function track(
  windows: ObservedWindow[],
  k: number,
  n: number,
  quiet: number,
  updateMinMs = 60_000,
  updateSeverityRise = 2,
): IncidentEvent[] {
  const tracker = new IncidentTracker({
    nFeatures: F,
    modelVersion: meta.version,
    confirmK: k,
    confirmN: n,
    quietWindows: quiet,
    updateMinMs,
    updateSeverityRise,
    maxFeatures: MAX_FEATURES,
  });
  const events = windows.flatMap((w) => tracker.observe(w));
  events.push(...tracker.expire("plant"));
  return events;
}

log(`[incidents] ${meta.name} ${meta.version}: ${F} features, threshold ${threshold}`);
log(`[incidents] clean plant: ${args.clean} windows`);
const clean = await record(
  createPlant({ nFeatures: F, noiseSeed: mixSeed(seed, 1) }),
  Number(args.clean),
);
const cleanAlertWindows = clean.filter((w) => w.flagged.length > 0).length;

// Labelled segment: events of every kind, one at a time, each followed by a quiet gap.
const plant = createPlant({ nFeatures: F, noiseSeed: mixSeed(seed, 2) });
const rng = new Rng(mixSeed(seed, 3));
const injected: AnomalySpec[] = [];
let at = 30;
for (let e = 0; e < Number(args["events-per-kind"]); e++) {
  for (const kind of ANOMALY_KINDS) {
    const spec = randomAnomaly(rng, { nFeatures: F, frameIndex: at }, { kind, start: at });
    plant.inject(spec);
    injected.push(spec);
    at += spec.duration + W + GAP;
  }
}
log(`[incidents] labelled plant: ${injected.length} events over ${at} windows`);
const labelled = await record(plant, at - W + 1);
const labelledAlertWindows = labelled.filter((w) => w.flagged.length > 0).length;
const labelledCleanWindows = labelled.filter((w) => {
  const t = w.timestamp / FRAME_MS;
  return !injected.some((s) => t >= s.start && t <= s.start + s.duration + W - 2);
});
const labelledCleanAlertWindows = labelledCleanWindows.filter((w) => w.flagged.length > 0).length;

interface Row {
  k: number;
  n: number;
  quiet: number;
  update_min_s: number;
  severity_rise: number;
  clean_incidents: number;
  false_per_10k: number;
  found: number;
  events: number;
  incidents_per_event: number;
  split_events: number;
  delay_median_s: number;
  delay_p90_s: number;
  resolve_after_end_median_s: number;
  alerts_per_incident: number;
  alerts_per_incident_max: number;
  injected_first: number;
  labelled_false: number;
}

const rows: Row[] = [];
const combos: [number, number, number, number, number][] = [];
for (const [k, n] of SETTINGS.confirm)
  for (const quiet of SETTINGS.quiet) combos.push([k, n, quiet, 60_000, 2]);
for (const update of SETTINGS.update)
  if (update !== 60_000) combos.push([CHOSEN.k, CHOSEN.n, CHOSEN.quiet, update, 2]);
for (const rise of SETTINGS.rise)
  combos.push([CHOSEN.k, CHOSEN.n, CHOSEN.quiet, CHOSEN.update, rise]);
for (const [k, n, quiet, update, rise] of combos) {
  {
    const cleanEvents = track(clean, k, n, quiet, update, rise);
    const cleanOpened = cleanEvents.filter((e) => e.event === "opened").length;
    const events = track(labelled, k, n, quiet, update, rise);
    const opened = events.filter((e) => e.event === "opened");
    const resolved = new Map(
      events.filter((e) => e.event === "resolved").map((e) => [e.incidentId, e]),
    );
    const perEvent = injected.map(() => [] as IncidentEvent[]);
    let labelledFalse = 0;
    for (const o of opened) {
      const t = o.startedAt / FRAME_MS;
      // An incident belongs to the event whose windows (plus confirmation) it starts in.
      const e = injected.findIndex((s) => t >= s.start && t <= s.start + s.duration + W - 2 + n);
      if (e < 0) labelledFalse++;
      else perEvent[e].push(o);
    }
    const found = perEvent.filter((l) => l.length > 0).length;
    const delays: number[] = [];
    const afterEnd: number[] = [];
    let injectedFirst = 0;
    perEvent.forEach((list, e) => {
      if (!list.length) return;
      const s = injected[e];
      delays.push(list[0].timestamp / FRAME_MS - s.start);
      const last = resolved.get(list.at(-1)!.incidentId);
      if (last) afterEnd.push(last.timestamp / FRAME_MS - (s.start + s.duration - 1));
      const top = (last ?? list[0]).sensors[0]?.feature_idx;
      if (s.features.includes(top)) injectedFirst++;
    });
    const ours = new Set(perEvent.flat().map((o) => o.incidentId));
    const perIncident = new Map<string, number>();
    for (const e of events) {
      if (ours.has(e.incidentId))
        perIncident.set(e.incidentId, (perIncident.get(e.incidentId) ?? 0) + 1);
    }
    const alerts = [...perIncident.values()].reduce((a, b) => a + b, 0);
    rows.push({
      k,
      n,
      quiet,
      update_min_s: update / 1000,
      severity_rise: rise,
      clean_incidents: cleanOpened,
      false_per_10k: round((cleanOpened * 10_000) / clean.length),
      found,
      events: injected.length,
      incidents_per_event: round(perEvent.flat().length / Math.max(1, found)),
      split_events: perEvent.filter((l) => l.length > 1).length,
      delay_median_s: quantile(delays, 0.5),
      delay_p90_s: quantile(delays, 0.9),
      resolve_after_end_median_s: quantile(afterEnd, 0.5),
      alerts_per_incident: round(alerts / Math.max(1, ours.size)),
      alerts_per_incident_max: Math.max(0, ...perIncident.values()),
      injected_first: injectedFirst,
      labelled_false: labelledFalse,
    });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
function quantile(xs: number[], q: number): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const header =
  "| k of n | quiet | update min s | severity rise | false incidents / 10k clean | events found | incidents / found event | split events | delay median (p90) s | resolved after end, median s | alerts / incident (max) | injected sensor first | false incidents (labelled run) |";
const lines = [
  header,
  `|${header
    .split("|")
    .slice(1, -1)
    .map(() => "---")
    .join("|")}|`,
];
for (const r of rows) {
  lines.push(
    `| ${r.k} of ${r.n} | ${r.quiet} | ${r.update_min_s} | ${r.severity_rise} | ${r.false_per_10k} (${r.clean_incidents}) | ${r.found}/${r.events} | ${r.incidents_per_event} | ${r.split_events} | ${r.delay_median_s} (${r.delay_p90_s}) | ${r.resolve_after_end_median_s} | ${r.alerts_per_incident} (${r.alerts_per_incident_max}) | ${r.injected_first}/${r.found} | ${r.labelled_false} |`,
  );
}
const summary = {
  model: meta.version,
  seed,
  clean_windows: clean.length,
  clean_alert_windows: cleanAlertWindows,
  clean_alert_windows_per_10k: round((cleanAlertWindows * 10_000) / clean.length),
  labelled_windows: labelled.length,
  labelled_alert_windows: labelledAlertWindows,
  labelled_clean_windows: labelledCleanWindows.length,
  labelled_clean_alert_windows: labelledCleanAlertWindows,
  events: injected.length,
  rows,
};
console.log(
  `clean: ${clean.length} windows, ${cleanAlertWindows} with a flagged sensor (frame-mode alerts); ` +
    `labelled: ${labelled.length} windows, ${injected.length} events, ${labelledAlertWindows} alert windows`,
);
console.log(lines.join("\n"));
if (args.json) await writeFile(resolve(args.json), `${JSON.stringify(summary, null, 2)}\n`);
