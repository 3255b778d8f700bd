// The promotion gate: both models scored on the same recent stretch, confirmed incidents and injected anomalies; the candidate must not be worse.
import type { ScoringModel } from "../../engine/infer/mod.ts";
import { IncidentTracker } from "../../scoring/incident_tracker.ts";
import { StreamFeatures, WindowShape } from "../../scoring/window_features.ts";
import { ANOMALY_KINDS, type AnomalyKind } from "../signal/mod.ts";
import { describeProblem, type SensorProblem } from "./flat_sensors.ts";
import type { ConfirmedIncident, Run } from "./history_data.ts";
import type { InjectedEvent } from "./inject.ts";

/** How the engine turns windows into incidents (its INCIDENT_* settings and threshold). */
export interface GateSettings {
  threshold: number;
  confirmK: number;
  confirmN: number;
  quietWindows: number;
}

/** One model's results on the gate's data. */
export interface ModelMetrics {
  version: string;
  recent: {
    windows: number;
    alarmWindows: number;
    incidents: number;
    falseAlarmFramesPer10k: number;
    falseIncidentsPer10k: number;
  };
  confirmed: { incidents: number; detected: number; recall: number | null };
  /** Per kind; `found`: which of the kind's events (0-based, in injection order) it found. */
  injected: Record<
    AnomalyKind,
    { events: number; detected: number; recall: number | null; found: number[] }
  >;
}

/**
 * Tolerances: how much worse than the active version the candidate may be on each criterion.
 * Rates may rise by 10 % plus one per 10,000 windows (noise on a short stretch); a confirmed
 * incident may not be lost (operators judged each one); injected recall, per kind, may fall by
 * 0.05, and beyond that only by chance: both models are scored on the same events, so the
 * candidate is held on a kind when it misses more of them than the active version by over 0.05
 * of the kind's events and a one-sided sign test on the events one model found and the other
 * did not gives p below `injectedSignificance` (0.01 a kind: 0.05 over the five kinds,
 * Bonferroni). With 20 events a kind, one event is 0.05: chance alone moved the same candidate
 * from 15 to 17 of 20 spikes found.
 */
export const TOLERANCES = {
  falseAlarmFramesPer10k: { relative: 0.1, absolute: 1 },
  falseIncidentsPer10k: { relative: 0.1, absolute: 1 },
  confirmedRecall: 0,
  injectedRecall: 0.05,
  injectedSignificance: 0.01,
} as const;

/**
 * One-sided exact sign test: the probability that `lost` or more of `discordant` events fall to
 * the active version's side when either side is equally likely (Binomial(discordant, 1/2)).
 */
export function signTestP(lost: number, discordant: number): number {
  if (discordant === 0 || lost === 0) return 1;
  let p = 0;
  let logC = 0; // ln C(discordant, k)
  const half = discordant * Math.LN2;
  for (let k = 0; k <= discordant; k++) {
    if (k >= lost) p += Math.exp(logC - half);
    logC += Math.log(discordant - k) - Math.log(k + 1);
  }
  return Math.min(1, p);
}

/**
 * Injected events a kind needs before the gate counts its detection as measured. With none (no
 * recent run long enough to inject into, inject.ts `injectionRunFrames`, or every event left
 * out by the false-positive cover) the candidate is held: passing it would promote a model that
 * finds nothing. A kind needs 7 events before the sign test can hold it at all (p = 1/128).
 */
export const MIN_INJECTED_EVENTS = 1;

export interface Criterion {
  name: string;
  active: number | null;
  candidate: number | null;
  /** The worst value the candidate may have. */
  limit: number | null;
  pass: boolean;
  note?: string;
}

/** Scores every window of `frames` (one stream, in order); `visit` gets the newest frame's index and its flagged sensors. */
async function scoreFrames(
  model: ScoringModel,
  threshold: number,
  frames: Float32Array[],
  visit: (i: number, flagged: Int32Array) => void,
): Promise<void> {
  const meta = model.metadata;
  const shape = WindowShape.forModel(meta);
  const W = meta.window_size;
  const F = meta.n_features;
  const maxBatch = 64;
  const input = new Float32Array(maxBatch * W * F);
  const output = new Float32Array(maxBatch * F);
  const at: number[] = [];
  const stream = new StreamFeatures(shape);
  const limit = Math.fround(threshold);
  const flush = async () => {
    if (at.length === 0) return;
    await model.score(input, at.length, output);
    for (let r = 0; r < at.length; r++) {
      const flagged: number[] = [];
      for (let f = 0; f < F; f++) if (output[r * F + f] >= limit) flagged.push(f);
      visit(at[r], Int32Array.from(flagged));
    }
    at.length = 0;
  };
  for (let i = 0; i < frames.length; i++) {
    const into = input.subarray(at.length * W * F, (at.length + 1) * W * F);
    if (!stream.push(frames[i], into)) continue;
    at.push(i);
    if (at.length === maxBatch) await flush();
  }
  await flush();
}

/** Windows before an injected anomaly in which its sensor must be quiet for a detection to count. */
const SETTLED_WINDOWS = 20;

const per10k = (n: number, of: number) => (of === 0 ? 0 : (10_000 * n) / of);

/** Scores `model` on the gate's data: the recent stretch, the confirmed incidents, the injected events. */
export async function measure(
  model: ScoringModel,
  data: { recent: Run[]; confirmed: ConfirmedIncident[]; events: InjectedEvent[] },
  settings: GateSettings,
): Promise<ModelMetrics> {
  const meta = model.metadata;
  const tracker = () =>
    new IncidentTracker({
      nFeatures: meta.n_features,
      modelVersion: meta.version,
      confirmK: settings.confirmK,
      confirmN: settings.confirmN,
      quietWindows: settings.quietWindows,
      updateMinMs: 0,
      updateSeverityRise: 1000,
      maxFeatures: 1,
    });
  let windows = 0;
  let alarmWindows = 0;
  let incidents = 0;
  for (const run of data.recent) {
    const t = tracker();
    await scoreFrames(
      model,
      settings.threshold,
      run.frames.map((f) => f.values),
      (i, flagged) => {
        windows++;
        if (flagged.length) alarmWindows++;
        const timestamp = run.frames[i].timestamp;
        for (const e of t.observe({ streamId: "s", timestamp, flagged, evidence: [] })) {
          if (e.event === "opened") incidents++;
        }
      },
    );
  }
  let detectedIncidents = 0;
  for (const incident of data.confirmed) {
    const t = tracker();
    let found = false;
    const frames = incident.run.frames;
    await scoreFrames(
      model,
      settings.threshold,
      frames.map((f) => f.values),
      (i, flagged) => {
        const timestamp = frames[i].timestamp;
        for (const e of t.observe({ streamId: "s", timestamp, flagged, evidence: [] })) {
          if (e.event === "opened" && timestamp >= incident.first && timestamp <= incident.last)
            found = true;
        }
      },
    );
    if (found) detectedIncidents++;
  }
  const injected = Object.fromEntries(
    ANOMALY_KINDS.map((k) => [
      k,
      { events: 0, detected: 0, recall: null as number | null, found: [] as number[] },
    ]),
  ) as ModelMetrics["injected"];
  for (const event of data.events) {
    const { spec, start } = event;
    const end = start + spec.duration + meta.window_size - 1;
    const [feature] = spec.features;
    let found = false;
    let before = false;
    await scoreFrames(model, settings.threshold, event.frames, (i, flagged) => {
      const hit = flagged.includes(feature);
      if (i >= start - SETTLED_WINDOWS && i < start && hit) before = true;
      if (i >= start && i < end && hit) found = true;
    });
    const tally = injected[spec.kind];
    tally.events++;
    // A sensor already alarming before the anomaly did not find it.
    if (found && !before) {
      tally.found.push(tally.events - 1);
      tally.detected++;
    }
  }
  for (const tally of Object.values(injected)) {
    tally.recall = tally.events ? tally.detected / tally.events : null;
  }
  return {
    version: meta.version,
    recent: {
      windows,
      alarmWindows,
      incidents,
      falseAlarmFramesPer10k: per10k(alarmWindows, windows),
      falseIncidentsPer10k: per10k(incidents, windows),
    },
    confirmed: {
      incidents: data.confirmed.length,
      detected: detectedIncidents,
      recall: data.confirmed.length ? detectedIncidents / data.confirmed.length : null,
    },
    injected,
  };
}

/**
 * The decision: `promoted` only when the candidate is not worse than the active version on any
 * criterion beyond its tolerance ({@link TOLERANCES}) and, when `training` is given, no sensor of
 * its training stretch is flat where the active version saw it vary (criterion `flatSensors`,
 * see models/retrain/flat_sensors.ts) and the candidate checks every sensor for being stuck that
 * the active version checks (`stuckDetection`); every failed criterion is a reason.
 */
export function decide(
  active: ModelMetrics,
  candidate: ModelMetrics,
  training?: {
    flat: readonly SensorProblem[];
    stuckDetectionLost?: readonly { feature: number; name: string }[];
    /** Why a kind may have had too few injected events (the run lengths), for its reason. */
    injectionShort?: string;
  },
): { decision: "promoted" | "held"; criteria: Criterion[]; reasons: string[] } {
  const criteria: Criterion[] = [];
  const rate = (name: "falseAlarmFramesPer10k" | "falseIncidentsPer10k") => {
    const a = active.recent[name];
    const c = candidate.recent[name];
    const tol = TOLERANCES[name];
    const limit = a * (1 + tol.relative) + tol.absolute;
    criteria.push({ name, active: a, candidate: c, limit, pass: c <= limit });
  };
  rate("falseAlarmFramesPer10k");
  rate("falseIncidentsPer10k");
  const nothing = (name: string, a: number | null, c: number | null) =>
    criteria.push({
      name,
      active: a,
      candidate: c,
      limit: null,
      pass: true,
      note: "nothing to measure",
    });
  const a = active.confirmed.recall;
  const c = candidate.confirmed.recall;
  if (a === null || c === null) nothing("confirmedIncidentRecall", a, c);
  else {
    const limit = a - TOLERANCES.confirmedRecall;
    criteria.push({
      name: "confirmedIncidentRecall",
      active: a,
      candidate: c,
      limit,
      pass: c >= limit - 1e-12,
    });
  }
  for (const kind of ANOMALY_KINDS) {
    const name = `injectedRecall.${kind}`;
    const ak = active.injected[kind];
    const ck = candidate.injected[kind];
    // Both models meet the same events: too few is too few for both.
    if (ak.events < MIN_INJECTED_EVENTS || ak.recall === null || ck.recall === null) {
      const why = training?.injectionShort ?? `${ak.events} ${kind} events injected`;
      criteria.push({
        name,
        active: ak.recall,
        candidate: ck.recall,
        limit: null,
        pass: false,
        note: `detection not measured: ${why} (at least ${MIN_INJECTED_EVENTS} needed a kind)`,
      });
      continue;
    }
    const byActive = new Set(ak.found);
    const byCandidate = new Set(ck.found);
    const lost = ak.found.filter((e) => !byCandidate.has(e)).length;
    const gained = ck.found.filter((e) => !byActive.has(e)).length;
    const p = signTestP(lost, lost + gained);
    const limit = ak.recall - TOLERANCES.injectedRecall;
    const beyond = ck.recall < limit - 1e-12;
    criteria.push({
      name,
      active: ak.recall,
      candidate: ck.recall,
      limit,
      pass: !beyond || p >= TOLERANCES.injectedSignificance,
      note: `of ${ak.events} events, ${lost} found by the active version only and ${gained} by the candidate only (one-sided sign test p = ${Number(p.toPrecision(2))}${beyond && p >= TOLERANCES.injectedSignificance ? ", within chance" : ""})`,
    });
  }
  if (training) {
    // Scores cannot show it: both models are judged on a recent stretch where the sensor is as
    // flat, and the candidate, having learnt the flat line, raises no alarm there.
    const flat = training.flat;
    criteria.push({
      name: "flatSensors",
      active: null,
      candidate: flat.length,
      limit: 0,
      pass: flat.length === 0,
      ...(flat.length ? { note: flat.map(describeProblem).join("; ") } : {}),
    });
    const lost = training.stuckDetectionLost ?? [];
    const shown = lost.slice(0, 5).map((s) => `${s.name} (feature ${s.feature})`);
    if (lost.length > shown.length) shown.push(`and ${lost.length - shown.length} more`);
    criteria.push({
      name: "stuckDetection",
      active: null,
      candidate: lost.length,
      limit: 0,
      pass: lost.length === 0,
      ...(lost.length
        ? {
            note: `the candidate does not check ${shown.join(", ")} for being stuck, which the active version does: its training stretch repeats a reading exactly or sits still there, so a stuck sensor would be learnt as normal`,
          }
        : {}),
    });
  }
  const reasons = criteria
    .filter((c) => !c.pass)
    .map((c) => {
      const fmt = (x: number | null) => (x === null ? "-" : Number(x.toFixed(4)));
      if (c.note && (c.active === null || c.limit === null)) return `${c.name}: ${c.note}`;
      const worse = c.name.startsWith("false") ? "above" : "below";
      const why = `${c.name}: candidate ${fmt(c.candidate)} is ${worse} the limit ${fmt(c.limit)} (active ${fmt(c.active)})`;
      return c.note ? `${why}; ${c.note}` : why;
    });
  if (reasons.length === 0) reasons.push("not worse than the active version on any criterion");
  return { decision: criteria.every((c) => c.pass) ? "promoted" : "held", criteria, reasons };
}
