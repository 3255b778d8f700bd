// The drift scenario of `npm run eval`: the plant's operating point moves and stays; the original model against one retraining and against scheduled retraining, and a sensor stuck for longer than the retraining lookback.
import type { ModelMetadata } from "../../contracts/model.ts";
import { TRAIN_DEFAULTS, trainFeaturewise } from "../featurewise/train.ts";
import {
  rawStuckCheck,
  sensorProblems,
  stuckCheckOf,
  stuckDetectionLost,
  stuckStretches,
} from "../retrain/flat_sensors.ts";
import { decide, type GateSettings, type ModelMetrics, measure } from "../retrain/gate.ts";
import { MIN_RECENT_FRAMES, RECENT_SHARE, type Run } from "../retrain/history_data.ts";
import { injectEvents, sensorStd } from "../retrain/inject.ts";
import { applyMove, createPlant, defaultMove, mixSeed } from "../signal/mod.ts";
import { buildArtifacts } from "../train/artifacts.ts";
import { DEFAULT_GATE_SETTINGS, referenceModel } from "../train/auto_setting.ts";
import {
  checkSchedule,
  DEFAULT_SCHEDULE,
  EPOCH_MS,
  runScheduledRetraining,
  type ScheduledRetraining,
  type ScheduleOptions,
  scheduledRetrainingText,
  type Trained,
} from "./drift_timeline.ts";

export interface DriftScenarioOptions {
  /** Sensors of the plant (default 40). */
  nFeatures?: number;
  /** Frames of each history (before the move, after it) and of each test stretch (default 1500). */
  frames?: number;
  /** Injected events per kind on each test stretch (default 20). */
  eventsPerKind?: number;
  seed?: number;
  settings?: GateSettings;
  /** The scheduled-retraining timeline (default {@link DEFAULT_SCHEDULE}). */
  schedule?: Partial<ScheduleOptions>;
  log?: (line: string) => void;
}

/** One model on one test stretch: the gate's metrics (false alarms, false incidents, injected recall). */
export interface DriftRow {
  model: string;
  data: string;
  metrics: ModelMetrics;
}

export interface DriftScenarioReport {
  settings: Record<string, unknown>;
  rows: DriftRow[];
  /** The promotion gate on the retraining after the move: decision and reasons. */
  retrainGate: { decision: string; reasons: string[] };
  /** The gate on a retraining whose whole lookback holds a stuck sensor. */
  stuckGate: { decision: string; reasons: string[]; sensor: number };
  /** Scheduled retraining over a timeline with the move: without an operator's verdict, and with one. */
  scheduled: ScheduledRetraining;
}

/** A model trained on `frames` as `npm run train` trains it (defaults), scored by the reference scorer. */
function trainModel(name: string, frames: Float32Array[], F: number) {
  const values = new Float32Array(frames.length * F);
  for (const [t, f] of frames.entries()) values.set(f, t * F);
  return trainValues(name, values, frames.length, F);
}

/** {@link trainModel} on a row-major series (`[nFrames, F]`). */
function trainValues(name: string, values: Float32Array, nFrames: number, F: number): Trained {
  const result = trainFeaturewise(
    { values, nFrames, nFeatures: F },
    { ...TRAIN_DEFAULTS, kind: "featurewise_ocsvm_svdd" },
  );
  const names = Array.from({ length: F }, (_, f) => `feature_${f}`);
  const { meta } = buildArtifacts(name, result, names, { kind: "drift_scenario" });
  return {
    model: referenceModel(result, meta),
    meta: meta as ModelMetadata,
    values,
    stuckCheck: stuckCheckOf(result.params, result.statistics, F),
    rawStuckCheck: rawStuckCheck(stuckCheckOf(result.params, result.statistics, F), meta),
  };
}

const asRun = (frames: Float32Array[], t0: number): Run => ({
  streamId: "s",
  frames: frames.map((values, i) => ({
    streamId: "s",
    timestamp: EPOCH_MS + (t0 + i) * 1000,
    session: 0,
    seq: i,
    incident: "",
    values,
  })),
});

/**
 * The scenario: a plant of `nFeatures` sensors; the original model is trained on its normal
 * operation. Then its operating point moves and stays: a fifth of the sensors shift level by 4
 * of their std, and three relations change (two sensors mirrored around their level, so their
 * readings keep their range while their correlation with the rest flips; one picks up 3 times
 * another's deviation). One retraining on the moved plant's history, split as `npm run retrain`
 * splits it (the most recent `max(200, 20 %)` frames judge), is gated against the original.
 * Both, and the original on the unmoved plant, are scored on fresh stretches: false alarms and
 * false incidents per 10,000 windows on clean frames, recall of injected events per kind.
 * Then a sensor is stuck through a whole retraining lookback and after it: the gate judges
 * a candidate trained on that history against the original. Finally scheduled retraining over a
 * timeline with the move, the history kept as the engine keeps it, without and with an
 * operator's false-positive verdict on the move's incident (drift_timeline.ts).
 */
export async function runDriftScenario(o: DriftScenarioOptions = {}): Promise<DriftScenarioReport> {
  const F = o.nFeatures ?? 40;
  const n = o.frames ?? 1500;
  const perKind = o.eventsPerKind ?? 20;
  const seed = o.seed ?? 1;
  const settings = o.settings ?? DEFAULT_GATE_SETTINGS;
  const log = o.log ?? (() => {});
  const plantSeed = 9000 + seed;
  const move = defaultMove(F);
  const { shifted, mirrored, coupled } = move;
  const stuckSensor = F - 1;
  const stretch = (day: number, moved: boolean, stuck = false): Float32Array[] => {
    const plant = createPlant({ nFeatures: F, seed: plantSeed, noiseSeed: mixSeed(seed, day) });
    let held = Number.NaN;
    return Array.from({ length: n }, () => {
      const x = Float32Array.from(plant.next());
      if (moved) applyMove(x, move, plant.sensors);
      if (stuck) {
        if (Number.isNaN(held)) held = x[stuckSensor];
        x[stuckSensor] = held;
      }
      return x;
    });
  };
  const split = (frames: Float32Array[]) => {
    const recent = Math.max(MIN_RECENT_FRAMES, Math.ceil(RECENT_SHARE * frames.length));
    return {
      train: frames.slice(0, frames.length - recent),
      recent: frames.slice(frames.length - recent),
    };
  };
  const gateData = (recent: Float32Array[], std: Float64Array, t0: number) => {
    const runs = [asRun(recent, t0)];
    return {
      recent: runs,
      confirmed: [],
      events: injectEvents(runs, std, { perKind, seed, windowSize: TRAIN_DEFAULTS.windowSize }),
    };
  };

  log(`[eval] drift: ${F} sensors, ${n} frames per stretch, ${perKind} events per kind`);
  const before = stretch(1, false);
  const original = trainModel("original", before, F);
  const stdBefore = sensorStd(original.values, n, F);

  // One retraining on the moved plant, split as retraining splits its history.
  const movedHistory = split(stretch(2, true));
  const retrained = trainModel("retrained", movedHistory.train, F);
  const stdMoved = sensorStd(retrained.values, movedHistory.train.length, F);
  const gateAfterMove = gateData(movedHistory.recent, stdMoved, 0);
  const movedTrain = { values: retrained.values, nFrames: movedHistory.train.length };
  const gate = decide(
    await measure(original.model, gateAfterMove, settings),
    await measure(retrained.model, gateAfterMove, settings),
    {
      flat: sensorProblems(movedTrain, original.meta).problems.filter((p) => p.problem === "flat"),
      stuckDetectionLost: stuckDetectionLost(
        original.rawStuckCheck,
        retrained.stuckCheck,
        original.meta.feature_names,
        original.rawStuckCheck
          ? stuckStretches(movedTrain, original.rawStuckCheck, original.meta.feature_names).sensors
          : [],
      ).stuck,
    },
  );
  log(`[eval] drift: the gate on the retraining after the move: ${gate.decision}`);

  const rows: DriftRow[] = [];
  const unmoved = gateData(stretch(3, false), stdBefore, 0);
  rows.push({
    model: "original",
    data: "before the move",
    metrics: await measure(original.model, unmoved, settings),
  });
  // Test events are sized in the moved plant's std (the same events for both models).
  const moved = gateData(stretch(4, true), stdMoved, 0);
  rows.push({
    model: "original, not retrained",
    data: "after the move",
    metrics: await measure(original.model, moved, settings),
  });
  rows.push({
    model: "retrained once",
    data: "after the move",
    metrics: await measure(retrained.model, moved, settings),
  });

  // A sensor stuck through the whole lookback (training part and recent stretch) and after it.
  const stuckHistory = split(stretch(5, false, true));
  const learnt = trainModel("learnt_stuck", stuckHistory.train, F);
  const stuckGateData = gateData(
    stuckHistory.recent,
    sensorStd(learnt.values, stuckHistory.train.length, F),
    0,
  );
  // The same sensor check retraining runs on its training stretch (models/retrain/flat_sensors.ts).
  const stuckTrain = {
    values: learnt.values,
    nFrames: stuckHistory.train.length,
  };
  const stuckGate = decide(
    await measure(original.model, stuckGateData, settings),
    await measure(learnt.model, stuckGateData, settings),
    {
      flat: sensorProblems(stuckTrain, original.meta).problems.filter((p) => p.problem === "flat"),
      stuckDetectionLost: stuckDetectionLost(
        original.rawStuckCheck,
        learnt.stuckCheck,
        original.meta.feature_names,
        original.rawStuckCheck
          ? stuckStretches(stuckTrain, original.rawStuckCheck, original.meta.feature_names).sensors
          : [],
      ).stuck,
    },
  );
  log(
    `[eval] drift: the gate on a history whose sensor ${stuckSensor} is stuck throughout: ${stuckGate.decision}`,
  );
  // Still stuck after the retraining: does either model keep flagging it?
  const stillStuck = gateData(stretch(6, false, true), stdBefore, 0);
  rows.push({
    model: "original",
    data: `sensor ${stuckSensor} stuck`,
    metrics: await measure(original.model, stillStuck, settings),
  });
  rows.push({
    model: "trained on the stuck history",
    data: `sensor ${stuckSensor} stuck`,
    metrics: await measure(learnt.model, stillStuck, settings),
  });
  rows.push({
    model: "trained on the stuck history",
    data: "sensor repaired",
    metrics: await measure(learnt.model, unmoved, settings),
  });

  // Scheduled retraining over one timeline (its own noise day), without and with a verdict.
  const schedule = { ...DEFAULT_SCHEDULE, ...o.schedule };
  checkSchedule(schedule);
  const timeline: Float32Array[] = [];
  const day = createPlant({ nFeatures: F, seed: plantSeed, noiseSeed: mixSeed(seed, 7) });
  for (let i = 0; i < schedule.totalFrames; i++) {
    const x = Float32Array.from(day.next());
    if (i >= schedule.normalFrames) applyMove(x, move, day.sensors);
    timeline.push(x);
  }
  // Each version on the fresh stretches above, with the same events as the rows.
  const fresh = new Map<string, Promise<ModelMetrics>>([
    [`${original.meta.version} false`, Promise.resolve(rows[0].metrics)],
    [`${original.meta.version} true`, Promise.resolve(rows[1].metrics)],
  ]);
  const scheduled = await runScheduledRetraining({
    frames: timeline,
    original,
    schedule,
    settings,
    perKind,
    seed,
    train: (values, nFrames) => trainValues("scheduled", values, nFrames, F),
    fresh: (m, isMoved) => {
      const key = `${m.meta.version} ${isMoved}`;
      let metrics = fresh.get(key);
      if (!metrics) {
        metrics = measure(m.model, isMoved ? moved : unmoved, settings);
        fresh.set(key, metrics);
      }
      return metrics;
    },
    log,
  });

  return {
    settings: {
      n_features: F,
      frames_per_stretch: n,
      events_per_kind: perKind,
      seed,
      plant_seed: plantSeed,
      shifted_sensors: shifted,
      mirrored_sensors: mirrored,
      coupled,
      stuck_sensor: stuckSensor,
      retraining: {
        train_frames: movedHistory.train.length,
        recent_frames: movedHistory.recent.length,
      },
      gate: settings,
    },
    rows,
    retrainGate: { decision: gate.decision, reasons: gate.reasons },
    stuckGate: { decision: stuckGate.decision, reasons: stuckGate.reasons, sensor: stuckSensor },
    scheduled,
  };
}

const fmt = (x: number | null) => (x === null ? "–" : x.toFixed(2));

/** The scenario as a markdown table and the two gate decisions. */
export function driftScenarioText(r: DriftScenarioReport): string {
  const kinds = Object.keys(r.rows[0]?.metrics.injected ?? {});
  const lines = [
    `Drift scenario (simulated plant, ${r.settings.n_features} sensors, ${r.settings.frames_per_stretch} frames per stretch; the gate's metrics; events sized in the training std):`,
    "",
    `| model | data | false-alarm windows / 10k | false incidents / 10k | ${kinds.map((k) => `recall ${k}`).join(" | ")} |`,
    `| --- | --- | --- | --- | ${kinds.map(() => "---").join(" | ")} |`,
  ];
  for (const row of r.rows) {
    const m = row.metrics;
    lines.push(
      `| ${row.model} | ${row.data} | ${m.recent.falseAlarmFramesPer10k.toFixed(0)} | ${m.recent.falseIncidentsPer10k.toFixed(1)} | ${kinds.map((k) => fmt(m.injected[k as keyof typeof m.injected].recall)).join(" | ")} |`,
    );
  }
  lines.push(
    "",
    `Gate on the retraining after the move: ${r.retrainGate.decision} (${r.retrainGate.reasons.join("; ")})`,
    `Gate on a retraining whose lookback holds sensor ${r.stuckGate.sensor} stuck throughout: ${r.stuckGate.decision} (${r.stuckGate.reasons.join("; ")})`,
    "",
    ...scheduledRetrainingText(r.scheduled),
  );
  return lines.join("\n");
}
