// The drift scenario's scheduled retraining: a timeline with the move, the history kept as the engine keeps it, a round every R frames, with and without an operator's verdict.
import type { ModelMetadata } from "../../contracts/model.ts";
import type { ScoringModel } from "../../engine/infer/mod.ts";
import { IncidentTracker } from "../../scoring/incident_tracker.ts";
import { StreamFeatures, WindowShape } from "../../scoring/window_features.ts";
import { falsePositiveCover, leaveOutCovered } from "../retrain/false_positive_cover.ts";
import { cutStuckFrames, sensorProblems, stuckDetectionLost } from "../retrain/flat_sensors.ts";
import { decide, type GateSettings, type ModelMetrics, measure } from "../retrain/gate.ts";
import { prepareHistory } from "../retrain/history_data.ts";
import { injectEvents, sensorStd } from "../retrain/inject.ts";

/** Stream time of frame 0 (the incident tracker reads a timestamp of 0 as none). */
export const EPOCH_MS = Date.UTC(2024, 0, 1);

/**
 * A trained version: what scores, its metadata, the series it learnt, which sensors it checks for
 * being stuck (`rawStuckCheck`: on their raw readings, models/retrain/flat_sensors.ts).
 */
export interface Trained {
  model: ScoringModel;
  meta: ModelMetadata;
  values: Float32Array;
  stuckCheck: Uint8Array | null;
  rawStuckCheck: Uint8Array | null;
}

/**
 * The scheduled-retraining timeline, in frames at 1 frame/s. The original is active at frame 0,
 * where the history starts and the scheduler starts with it; `normalFrames` (M) of normal
 * operation, then the move, kept up to `totalFrames` (T); a round at every multiple of
 * `everyFrames` (R, RETRAIN_EVERY_H), reading the last `lookbackFrames` (L) recorded frames (what
 * HISTORY_MAX_BYTES keeps). With a verdict, an operator marks the move's incident a false
 * positive `verdictAfter` (V) frames after the move.
 */
export interface ScheduleOptions {
  normalFrames: number;
  everyFrames: number;
  lookbackFrames: number;
  verdictAfter: number;
  totalFrames: number;
}

/** M 25 min, R 1 h, L 2 h, V 30 min, T 5 h (see models/eval/README.md, "Drift scenario"). */
export const DEFAULT_SCHEDULE: ScheduleOptions = {
  normalFrames: 1500,
  everyFrames: 3600,
  lookbackFrames: 7200,
  verdictAfter: 1800,
  totalFrames: 18_000,
};

/** One scheduled round: what the history held and what the gate decided. */
export interface RetrainRound {
  frame: number;
  /** Frames since the move. */
  afterMove: number;
  /** Recorded frames read (the lookback), and those retraining may use (`frameUse`). */
  read: number;
  usable: number;
  /** Usable frames of incidents judged false positive. */
  falsePositiveFrames: number;
  trainFrames: number;
  recentFrames: number;
  decision: "promoted" | "held" | "too little history";
  reasons: string[];
  active: string;
  candidate: string | null;
  /** Injected events the gate counted, and those the false-positive cover left out. */
  events: number;
  eventsLeftOut: number;
}

/** A stretch of the timeline as operators saw it: every window, the incident tracker's incidents. */
export interface TimelineSegment {
  name: string;
  from: number;
  to: number;
  windows: number;
  alarmWindows: number;
  /** Incidents opened in it: all false, the timeline holds no anomaly. */
  incidents: number;
  falseAlarmWindowsPer10k: number;
  falseIncidentsPer10k: number;
  /** Share of its frames recorded inside an incident's windows. */
  inIncidentShare: number;
  /** Versions active in it, in order. */
  versions: string[];
  /** The version active at its end, on the fresh test stretch of its plant state. */
  fresh: ModelMetrics;
}

export interface ScheduledVariant {
  name: string;
  verdictAfter: number | null;
  /** The incident the verdict was given on (open V frames after the move). */
  verdictIncident: string | null;
  rounds: RetrainRound[];
  firstPromotion: { frame: number; afterMove: number; minutes: number; version: string } | null;
  segments: TimelineSegment[];
}

/** Scheduled retraining over the timeline: its settings, and each variant (no verdict, verdict). */
export interface ScheduledRetraining {
  settings: Record<string, unknown>;
  variants: ScheduledVariant[];
}

/** What both variants share: the timeline, the original, how candidates train and fresh stretches score. */
export interface TimelineInput {
  /** The timeline's frames, the plant moved from `schedule.normalFrames` on. */
  frames: Float32Array[];
  original: Trained;
  schedule: ScheduleOptions;
  settings: GateSettings;
  /** Injected events per kind in each round's gate, and their seed (as `npm run retrain`). */
  perKind: number;
  seed: number;
  /** Trains a candidate on a row-major series as the scenario trains every model. */
  train: (values: Float32Array, nFrames: number) => Trained;
  /** The gate's metrics of `model` on the scenario's fresh stretch before the move / after it. */
  fresh: (model: Trained, moved: boolean) => Promise<ModelMetrics>;
  log: (line: string) => void;
}

/**
 * Runs the timeline twice: no operator ever judges an incident, and an operator marks the move's
 * incident a false positive `schedule.verdictAfter` frames after the move.
 */
export async function runScheduledRetraining(input: TimelineInput): Promise<ScheduledRetraining> {
  const s = input.schedule;
  checkSchedule(s);
  if (input.frames.length !== s.totalFrames) {
    throw new RangeError(
      `the timeline must hold 'schedule.totalFrames' (${s.totalFrames}) frames, got ${input.frames.length}`,
    );
  }
  return {
    settings: {
      normal_frames: s.normalFrames,
      every_frames: s.everyFrames,
      lookback_frames: s.lookbackFrames,
      verdict_after_frames: s.verdictAfter,
      total_frames: s.totalFrames,
      frames_per_second: 1,
    },
    variants: [
      await runTimeline(input, "no verdict", null),
      await runTimeline(input, "verdict", s.verdictAfter),
    ],
  };
}

/** Scores windows `from..to` of one stream, continuing `features`; `visit` gets each window's newest frame, in order. */
async function scoreSpan(
  model: ScoringModel,
  features: StreamFeatures,
  frames: Float32Array[],
  span: { from: number; to: number; threshold: number },
  visit: (i: number, flagged: Int32Array) => void,
): Promise<void> {
  const W = model.metadata.window_size;
  const F = model.metadata.n_features;
  const maxBatch = 64;
  const input = new Float32Array(maxBatch * W * F);
  const output = new Float32Array(maxBatch * F);
  const limit = Math.fround(span.threshold);
  const at: number[] = [];
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
  for (let i = span.from; i < span.to; i++) {
    if (!features.push(frames[i], input.subarray(at.length * W * F, (at.length + 1) * W * F)))
      continue;
    at.push(i);
    if (at.length === maxBatch) await flush();
  }
  await flush();
}

/**
 * The stream's features under a newly activated version, as the engine's hot swap carries them
 * (engine/window/stream_windows.ts `adopt("carry")`): kept when the running levels are the same,
 * else rebuilt by replaying the readings the window holds.
 */
function adoptFeatures(features: StreamFeatures, meta: ModelMetadata): StreamFeatures {
  const shape = WindowShape.forModel(meta);
  const [a, b] = [features.shape.baseline, shape.baseline];
  const same =
    !a || !b
      ? !a && !b
      : a.alpha === b.alpha &&
        a.span === b.span &&
        a.features.length === b.features.length &&
        a.features.every((f, i) => f === b.features[i]);
  if (same) return features;
  const next = new StreamFeatures(shape);
  const readings = features.lastReadings();
  const F = shape.frameSize;
  const scratch = new Float32Array(shape.windowValues);
  for (let t = 0; t * F < readings.length; t++) {
    next.push(readings.subarray(t * F, (t + 1) * F), scratch);
  }
  return next;
}

/** An incident of the timeline: frame of its first anomalous window, when it opened and resolved. */
interface TimelineIncident {
  id: string;
  start: number;
  opened: number;
  resolved: number | null;
}

/**
 * One variant of the timeline: the active version scores the stream, the incident tracker
 * (the alert path's and the history recorder's) turns its windows into incidents, and the
 * history is kept as engine/history/history_recorder.ts keeps it: each window's newest frame,
 * held until its incident membership is known, written clean or tagged with the incident whose
 * windows it is part of. Every `everyFrames` a round retrains as models/retrain/retrain.ts does
 * on the last `lookbackFrames` recorded frames: `prepareHistory` (tagged frames left out unless
 * judged false positive; the most recent part judges; too little history stops the round), the
 * flat-sensor check, a candidate, injected events less those the false-positive cover leaves
 * out, the gate; a promoted candidate scores from the round's frame on. `verdictAfter` null: no
 * operator ever judges an incident.
 */
async function runTimeline(
  ctx: TimelineInput,
  name: string,
  verdictAfter: number | null,
): Promise<ScheduledVariant> {
  const { frames, schedule, settings, log } = ctx;
  const move = schedule.normalFrames;
  const F = ctx.original.meta.n_features;
  const T = frames.length;
  const W = ctx.original.meta.window_size;
  const timestamp = (i: number) => EPOCH_MS + i * 1000;
  let active = ctx.original;
  let features = new StreamFeatures(WindowShape.forModel(active.meta));
  const tracker = new IncidentTracker({
    nFeatures: F,
    modelVersion: active.meta.version,
    confirmK: settings.confirmK,
    confirmN: settings.confirmN,
    quietWindows: settings.quietWindows,
    updateMinMs: 0,
    updateSeverityRise: 1000,
    maxFeatures: 1,
  });
  const scored = new Uint8Array(T);
  const alarm = new Uint8Array(T);
  const openedAt = new Uint8Array(T);
  /** Per frame: -1 not written (yet), else the index of the incident it is tagged with, or -2 clean. */
  const tag = new Int32Array(T).fill(-1);
  const incidents: TimelineIncident[] = [];
  const activations = [{ from: 0, version: active.meta.version, trained: active }];
  let held: number[] = [];
  let open: number | undefined;

  const observe = (i: number, flagged: Int32Array) => {
    scored[i] = 1;
    if (flagged.length) alarm[i] = 1;
    held.push(i);
    let resolved: number | undefined;
    for (const e of tracker.observe({
      streamId: "s",
      timestamp: timestamp(i),
      flagged,
      evidence: [],
    })) {
      if (e.event === "opened") {
        const start = (e.startedAt - EPOCH_MS) / 1000;
        incidents.push({ id: e.incidentId, start, opened: i, resolved: null });
        open = incidents.length - 1;
        openedAt[i] = 1;
        // Its windows reach W - 1 frames before its first one; what was held before them is clean.
        for (const h of held) tag[h] = h >= start - (W - 1) ? open : -2;
        held = [];
      } else if (e.event === "resolved" && open !== undefined) {
        incidents[open].resolved = i;
        resolved = open;
      }
    }
    const inside = open ?? resolved;
    if (inside !== undefined) {
      for (const h of held) tag[h] = inside;
      held = [];
    } else if (!tracker.has("s")) {
      // Nothing confirming: frames no later window can reach are clean.
      held = held.filter((h) => {
        if (h > i - (W - 1)) return true;
        tag[h] = -2;
        return false;
      });
    }
    if (resolved !== undefined) open = undefined;
  };

  const verdictFrame = verdictAfter === null ? null : move + verdictAfter;
  let judged: number | undefined;
  const rounds: RetrainRound[] = [];
  /** What a round at `t` reads: the last `lookbackFrames` frames written, with the index's verdicts. */
  const readAt = (t: number) => {
    if (verdictFrame !== null && t >= verdictFrame && judged === undefined) {
      // The incident open when the operator looked at the stream.
      judged = incidents.findIndex(
        (x) => x.opened <= verdictFrame && (x.resolved === null || x.resolved >= verdictFrame),
      );
    }
    const recorded: number[] = [];
    for (let i = 0; i < t; i++) if (tag[i] !== -1) recorded.push(i);
    const lookback = recorded.slice(-schedule.lookbackFrames);
    const ids = new Set(lookback.filter((i) => tag[i] >= 0).map((i) => tag[i]));
    const read = {
      frames: lookback.map((i) => ({
        streamId: "s",
        timestamp: timestamp(i),
        session: 0,
        seq: i,
        incident: tag[i] >= 0 ? incidents[tag[i]].id : "",
        values: frames[i],
      })),
      index: {
        v: 1 as const,
        model: "drift",
        updated_at: new Date(timestamp(t)).toISOString(),
        incidents: Object.fromEntries(
          [...ids].map((k) => [
            incidents[k].id,
            {
              stream: "s",
              first: timestamp(Math.max(0, incidents[k].start - (W - 1))),
              last: timestamp(incidents[k].resolved ?? t - 1),
              frames: lookback.filter((i) => tag[i] === k).length,
              verdict: k === judged ? ("false_positive" as const) : null,
            },
          ]),
        ),
        excluded: {},
        dropped_chunks: 0,
      },
      chunks: 1,
      otherFeatures: 0,
      skippedRecords: 0,
      skippedBytes: 0,
      warnings: [],
    };
    return { lookback, read };
  };
  const round = async (t: number): Promise<RetrainRound> => {
    const { lookback, read } = readAt(t);
    const base = {
      frame: t,
      afterMove: t - move,
      read: lookback.length,
      active: active.meta.version,
    };
    let prepared: ReturnType<typeof prepareHistory>;
    try {
      prepared = prepareHistory(read, F);
    } catch (error) {
      const usable = lookback.filter((i) => tag[i] === -2 || tag[i] === judged).length;
      return {
        ...base,
        usable,
        falsePositiveFrames: lookback.filter((i) => tag[i] === judged).length,
        trainFrames: 0,
        recentFrames: 0,
        decision: "too little history",
        reasons: [(error as Error).message],
        candidate: null,
        events: 0,
        eventsLeftOut: 0,
      };
    }
    // As npm run retrain: frames in which a sensor the active version checks was stuck are cut out.
    const { train, stuck } = cutStuckFrames(
      prepared.train,
      active.rawStuckCheck,
      active.meta.feature_names,
    );
    const flat = sensorProblems(train, active.meta).problems.filter((p) => p.problem === "flat");
    const candidate = ctx.train(train.values, train.nFrames);
    const std = sensorStd(train.values, train.nFrames, F);
    const injected = injectEvents(prepared.recent.runs, std, {
      perKind: ctx.perKind,
      seed: ctx.seed,
      windowSize: W,
    });
    const { counted, leftOut } = leaveOutCovered(injected, falsePositiveCover(train, std));
    const data = { recent: prepared.recent.runs, confirmed: prepared.confirmed, events: counted };
    const gate =
      candidate.meta.version === active.meta.version
        ? {
            decision: "held" as const,
            reasons: ["the candidate could not be loaded: the candidate is the active version"],
          }
        : decide(
            await measure(active.model, data, settings),
            await measure(candidate.model, data, settings),
            {
              flat,
              stuckDetectionLost: stuckDetectionLost(
                active.rawStuckCheck,
                candidate.stuckCheck,
                active.meta.feature_names,
                stuck?.sensors,
              ).stuck,
            },
          );
    if (gate.decision === "promoted") {
      active = candidate;
      features = adoptFeatures(features, candidate.meta);
      tracker.useModelVersion(candidate.meta.version);
      activations.push({ from: t, version: candidate.meta.version, trained: candidate });
    }
    return {
      ...base,
      usable: prepared.usable,
      falsePositiveFrames: prepared.falsePositiveFrames,
      trainFrames: train.nFrames,
      recentFrames: prepared.recent.frames,
      decision: gate.decision,
      reasons: gate.reasons,
      candidate: candidate.meta.version,
      events: counted.length,
      eventsLeftOut: leftOut.events,
    };
  };

  for (let t = 0; t < T; ) {
    const next = Math.min(T, (Math.floor(t / schedule.everyFrames) + 1) * schedule.everyFrames);
    await scoreSpan(
      active.model,
      features,
      frames,
      { from: t, to: next, threshold: settings.threshold },
      observe,
    );
    t = next;
    if (t >= T) break;
    const r = await round(t);
    rounds.push(r);
    log(`[eval] drift: ${name}: round at ${r.afterMove} frames after the move: ${r.decision}`);
  }

  const promoted = activations[1];
  const cut = promoted?.from ?? T;
  const bounds: [string, number, number][] = [
    ["before the move", 0, move],
    [promoted ? "moved, before the first promotion" : "moved, never promoted", move, cut],
    ["moved, after the first promotion", cut, T],
  ];
  // With more than one promotion, each promoted version's own stretch too.
  if (activations.length > 2) {
    activations.slice(1).forEach((a, k) => {
      bounds.push([`moved, promotion ${k + 1} active`, a.from, activations[k + 2]?.from ?? T]);
    });
  }
  const segments: TimelineSegment[] = [];
  for (const [segment, from, to] of bounds) {
    if (to <= from) continue;
    let windows = 0;
    let alarms = 0;
    let opened = 0;
    let inside = 0;
    for (let i = from; i < to; i++) {
      windows += scored[i];
      alarms += alarm[i];
      opened += openedAt[i];
      if (scored[i] && tag[i] >= 0) inside++;
    }
    const during = activations.filter(
      (a, k) => a.from < to && (activations[k + 1]?.from ?? T) > from,
    );
    const last = during.at(-1) ?? activations[0];
    segments.push({
      name: segment,
      from,
      to,
      windows,
      alarmWindows: alarms,
      incidents: opened,
      falseAlarmWindowsPer10k: windows ? (10_000 * alarms) / windows : 0,
      falseIncidentsPer10k: windows ? (10_000 * opened) / windows : 0,
      inIncidentShare: windows ? inside / windows : 0,
      versions: during.map((a) => a.version),
      fresh: await ctx.fresh(last.trained, from >= move),
    });
  }
  return {
    name,
    verdictAfter,
    verdictIncident: judged !== undefined && judged >= 0 ? incidents[judged].id : null,
    rounds,
    firstPromotion: promoted
      ? {
          frame: promoted.from,
          afterMove: promoted.from - move,
          minutes: (promoted.from - move) / 60,
          version: promoted.version,
        }
      : null,
    segments,
  };
}

/** Refuses a timeline that cannot say what it measures. */
export function checkSchedule(s: ScheduleOptions): void {
  for (const [name, value] of Object.entries(s)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`'schedule.${name}' must be an integer >= 1, got ${value}`);
    }
  }
  // The timeline starts at the round that left the original active: the next one comes after the move.
  if (s.normalFrames >= s.everyFrames) {
    throw new RangeError(
      `'schedule.normalFrames' must be below 'schedule.everyFrames' (${s.everyFrames}), got ${s.normalFrames}`,
    );
  }
  if (s.totalFrames <= s.everyFrames) {
    throw new RangeError(
      `'schedule.totalFrames' must hold at least one round (above ${s.everyFrames}), got ${s.totalFrames}`,
    );
  }
}

const fmt = (x: number | null) => (x === null ? "–" : x.toFixed(2));
const minutes = (frames: number) => `${frames} (${(frames / 60).toFixed(0)} min)`;
const short = (version: string) => version.replace(/^.*\+/, "");

/** The scheduled-retraining part of the report: the rounds, the first promotion, the segments. */
export function scheduledRetrainingText(s: ScheduledRetraining): string[] {
  const o = s.settings;
  const kinds = Object.keys(s.variants[0]?.segments[0]?.fresh.injected ?? {});
  const lines = [
    `Scheduled retraining (1 frame/s): the move at frame ${o.normal_frames}, a round every ${minutes(o.every_frames as number)} frames from frame 0, each reading the last ${o.lookback_frames} recorded frames; ${o.total_frames} frames in all. "verdict": the move's incident marked false positive ${minutes(o.verdict_after_frames as number)} frames after the move.`,
    "",
    "| variant | round at (frames after the move) | read | usable | of them judged false positive | train / recent | decision | reasons |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const v of s.variants) {
    for (const x of v.rounds) {
      lines.push(
        `| ${v.name} | ${x.frame} (+${minutes(x.afterMove)}) | ${x.read} | ${x.usable} | ${x.falsePositiveFrames} | ${x.trainFrames} / ${x.recentFrames} | ${x.decision} | ${x.reasons.join("; ").replace(/\|/g, "/")} |`,
      );
    }
  }
  lines.push("");
  for (const v of s.variants) {
    const p = v.firstPromotion;
    lines.push(
      `First promoted version, ${v.name}: ${p ? `${short(p.version)} at frame ${p.frame}, ${minutes(p.afterMove)} frames after the move` : "none"}`,
    );
  }
  lines.push(
    "",
    `| variant | segment | frames | versions | false-alarm windows / 10k | false incidents / 10k | in an incident | fresh stretch: false-alarm windows / 10k | false incidents / 10k | ${kinds.map((k) => `recall ${k}`).join(" | ")} |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | ${kinds.map(() => "---").join(" | ")} |`,
  );
  for (const v of s.variants) {
    for (const g of v.segments) {
      const m = g.fresh;
      lines.push(
        `| ${v.name} | ${g.name} | ${g.from}..${g.to} | ${g.versions.map(short).join(", ")} | ${g.falseAlarmWindowsPer10k.toFixed(0)} | ${g.falseIncidentsPer10k.toFixed(1)} | ${(100 * g.inIncidentShare).toFixed(0)} % | ${m.recent.falseAlarmFramesPer10k.toFixed(0)} | ${m.recent.falseIncidentsPer10k.toFixed(1)} | ${kinds.map((k) => fmt(m.injected[k as keyof typeof m.injected].recall)).join(" | ")} |`,
      );
    }
  }
  return lines;
}
