// Retraining from the recorded history: a candidate trained as `npm run train` trains, written to the registry, judged by the gate, promoted or held.
import { access, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ModelMetadata } from "../../contracts/model.ts";
import { formatRunningCondition } from "../../contracts/running_condition.ts";
import { readHistory } from "../../engine/history/mod.ts";
import {
  type Activation,
  type Device,
  loadModel,
  ModelRegistry,
  type ScoringModel,
  type VersionRef,
  verifyVersion,
} from "../../engine/infer/mod.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { FeaturewiseKind } from "../featurewise/params.ts";
import { trainFeaturewise } from "../featurewise/train.ts";
import { buildArtifacts } from "../train/artifacts.ts";
import { onnxLoader } from "../train/auto_onnx.ts";
import { chooseSetting } from "../train/auto_setting.ts";
import {
  COVER_RULE,
  falsePositiveCover,
  leaveOutCovered,
  listedLeftOut,
} from "./false_positive_cover.ts";
import {
  cutStuckFrames,
  describeProblem,
  FLAT_SHARE,
  rawStuckCheck,
  STUCK_MAX_SHARE,
  sensorProblems,
  stuckDetection,
  stuckDetectionLost,
} from "./flat_sensors.ts";
import { decide, type GateSettings, MIN_INJECTED_EVENTS, measure, TOLERANCES } from "./gate.ts";
import { MIN_TRAIN_FRAMES, prepareHistory } from "./history_data.ts";
import { injectEvents, injectionRunFrames, sensorStd } from "./inject.ts";
import type { RetrainReport } from "./report.ts";
import { lockRetraining, RetrainLockedError } from "./retrain_lock.ts";

/** Retraining cannot go on: the message says why (the CLI prints it and exits 1). */
export class RetrainError extends Error {
  override name = "RetrainError";
}

/**
 * Injected anomalies of each kind the gate scores both models on, by default. 40 rather than 20:
 * the gate compares the two models event by event, and a sign test needs discordant events to
 * tell a real loss from chance.
 */
export const EVENTS_PER_KIND = 40;

export interface RetrainOptions {
  model: string;
  /** The model's history folder (`HISTORY_DIR/<model>`). */
  historyDir: string;
  registryDir: string;
  promote: "auto" | "manual";
  settings: GateSettings;
  device: Device;
  /** The lookback: only the most recent this many recorded frames are read (`RETRAIN_MAX_FRAMES`; default all). */
  maxFrames?: number;
  /** Injected anomalies per kind (default 20) and their seed (default 1). */
  eventsPerKind?: number;
  seed?: number;
  /** Who the promotion's activation names (default "retrain"). */
  by?: string;
  /** Why the run happened (who asked for it), added to the promotion's activation reason. */
  reason?: string;
  /** The registry at `registryDir` (default: one opened on it). */
  registry?: ModelRegistry;
  /**
   * Choose the candidate's window size and tail margin by `chooseSetting` on the training series
   * (default: the active version's window size and the training defaults).
   */
  auto?: boolean;
  log: Logger;
  /** Progress lines. */
  say?: (line: string) => void;
}

/** Where the report of `version` lies: beside the version's folder. */
export const reportPath = (registryDir: string, name: string, version: string) =>
  join(registryDir, name, `${version}.retrain.json`);

async function load(
  ref: VersionRef,
  meta: ModelMetadata,
  o: RetrainOptions,
): Promise<ScoringModel> {
  return loadModel({
    dir: ref.dir,
    name: ref.name,
    device: o.device,
    log: o.log,
    maxBatch: 64,
    metadata: meta,
  });
}

/**
 * Trains a candidate of `model` from its history, writes it into the registry (not active),
 * scores it and the active version on the gate's data and decides. With `promote: "auto"` a
 * promoted candidate is activated (a running engine follows the registry's pointer), only while
 * the registry still names the version the gate compared it with: once another version was
 * activated during the run (an operator's rollback) the candidate is held, the first reason
 * saying so, and that activation stands (one landing in the instant between the check and the
 * candidate's activation is put back). With `promote: "manual"` such a candidate is held the same
 * way, not offered as ready for activation. A candidate that does not load is held, never activated. Writes the report beside the version
 * and returns it. Throws {@link RetrainError} when there is too little history, a sensor has
 * non-finite readings in it, there is nothing new to train on (the candidate is the active
 * version or was judged before: its report is not touched), the model has no active version, or the active one is not in the
 * registry layout.
 */
export async function retrain(o: RetrainOptions): Promise<RetrainReport> {
  // One run of a model at a time (a person's CLI beside the engine's run): see lockRetraining.
  const release = await lockRetraining(o.registryDir, o.model).catch((error: unknown) => {
    throw error instanceof RetrainLockedError ? new RetrainError(error.message) : error;
  });
  try {
    return await retrainAlone(o);
  } finally {
    await release();
  }
}

async function retrainAlone(o: RetrainOptions): Promise<RetrainReport> {
  const say = o.say ?? (() => {});
  const registry = o.registry ?? new ModelRegistry(o.registryDir);
  const entry = await registry.model(o.model).catch((error: Error) => {
    throw new RetrainError(error.message);
  });
  if (entry.layout !== "registry") {
    throw new RetrainError(
      `${o.model} is in the flat layout in ${o.registryDir}, and retraining writes versions into a registry: use the one npm start keeps (MODEL_DIR=.data/engine/models, or DATA_DIR/models when it ran with another DATA_DIR), or write a first version into your own (npm run train -- --model ${o.model} --out DIR, then MODEL_DIR=DIR)`,
    );
  }
  const activeRef = await registry.resolve(o.model).catch((error: Error) => {
    throw new RetrainError(error.message);
  });
  const activeMeta = await verifyVersion(activeRef);
  // Each says why there is nothing to read: a young history (the engine holds the run) and a
  // wrong path read differently; only a path that is no folder at all is a failure.
  const folder = await stat(o.historyDir).catch(() => undefined);
  if (!folder) {
    throw new RetrainError(
      `${o.historyDir}: too little history: no such folder, nothing of ${o.model} recorded there yet (if the engine has scored it for a while, check --history, or HISTORY_DIR / DATA_DIR as the engine has them); no version written`,
    );
  }
  if (!folder.isDirectory()) {
    throw new RetrainError(`${o.historyDir}: not a folder; no version written`);
  }
  const read = await readHistory(o.historyDir, {
    model: o.model,
    featureNames: activeMeta.feature_names,
    maxFrames: o.maxFrames,
  });
  for (const w of read.warnings) say(`warning: ${w}`);
  if (read.lookback?.chunksNotRead) {
    say(
      `lookback: the most recent ${read.frames.length} frames (at most ${read.lookback.maxFrames}); ${read.lookback.chunksNotRead} older chunks not read`,
    );
  }
  if (read.frames.length === 0 && read.otherFeatures > 0) {
    throw new RetrainError(
      `${o.historyDir}: too little history: its ${read.otherFeatures} chunks were all recorded with other sensors than ${o.model}'s active version reads (from before its sensors changed, or another model's history); no version written`,
    );
  }
  if (read.chunks === 0) {
    throw new RetrainError(
      `${o.historyDir}: too little history: no chunks in it yet (the engine writes them as it scores, every HISTORY_EVERY_N-th run); no version written`,
    );
  }
  let prepared: ReturnType<typeof prepareHistory>;
  try {
    prepared = prepareHistory(read, activeMeta.n_features);
  } catch (error) {
    throw new RetrainError(`${o.historyDir}: ${(error as Error).message}; no version written`);
  }
  // A sensor the active version checks for being stuck that repeats a reading exactly in the
  // history was stuck there, unnoticed or judged a false positive: those frames are cut out, so
  // the candidate keeps checking it (flat_sensors.ts stuckStretches).
  const activeStuckCheck = rawStuckCheck(
    stuckDetection(await readFile(join(activeRef.dir, `${o.model}.onnx`)), activeMeta),
    activeMeta,
  );
  const { train, stuck } = cutStuckFrames(
    prepared.train,
    activeStuckCheck,
    activeMeta.feature_names,
  );
  if (stuck?.sensors.length) {
    const left = stuck.sensors.filter((s) => s.action === "left_out");
    const kept = stuck.sensors.filter((s) => s.action === "kept");
    if (left.length) {
      say(
        `${stuck.dropped} training frames left out: ${left.map((s) => `${s.name} held a reading in ${s.frames}`).join(", ")} (stuck)`,
      );
    }
    for (const s of kept) {
      say(
        `warning: ${s.name} held a reading in ${s.frames} of ${prepared.train.nFrames} training frames, over ${STUCK_MAX_SHARE * 100} %: not cut out; the gate will hold a candidate that stops checking it`,
      );
    }
  }
  if (train.nFrames < MIN_TRAIN_FRAMES) {
    throw new RetrainError(
      `${o.historyDir}: too little history: ${train.nFrames} training frames after leaving out ${stuck?.dropped ?? 0} in which a sensor was stuck; a candidate needs at least ${MIN_TRAIN_FRAMES}; no version written`,
    );
  }
  const sensorCheck = sensorProblems(train, activeMeta);
  const nonFinite = sensorCheck.problems.filter((p) => p.problem === "non_finite");
  if (nonFinite.length) {
    throw new RetrainError(
      `${o.historyDir}: cannot train on ${nonFinite.map(describeProblem).join("; ")}; no version written`,
    );
  }
  const flat = sensorCheck.problems.filter((p) => p.problem === "flat");
  for (const p of flat) say(`warning: ${describeProblem(p)}`);
  say(
    `training on ${train.nFrames} frames (${train.runs} runs) x ${activeMeta.n_features} features`,
  );
  const series = { values: train.values, nFrames: train.nFrames, nFeatures: activeMeta.n_features };
  const kind = activeMeta.kind as FeaturewiseKind;
  const auto = o.auto
    ? await chooseSetting(series, { train: { kind }, load: onnxLoader(o.device), say })
    : undefined;
  if (auto) say(`--auto: window ${auto.chosen.windowSize}, tail margin ${auto.chosen.tailMargin}`);
  const result = trainFeaturewise(series, {
    kind,
    ...(auto?.chosen ?? { windowSize: activeMeta.window_size }),
  });
  const source = {
    kind: "history",
    dir: o.historyDir,
    frames: train.nFrames,
    runs: train.runs,
    from: new Date(train.from).toISOString(),
    to: new Date(train.to).toISOString(),
  };
  // The active version's running condition goes on: without it the candidate scored stopped
  // machines again, and the recorder kept their frames for the next retraining.
  const { onnx, meta } = buildArtifacts(o.model, result, activeMeta.feature_names, source, {
    running: activeMeta.running,
  });
  if (activeMeta.running) {
    meta.training.running = {
      condition: formatRunningCondition(activeMeta.running),
      from: "the active version",
      stoppedFrames: read.index.excluded.machine_off ?? 0,
    };
  }
  if (auto)
    meta.training.auto = { chosen: auto.chosen, reason: auto.reason, holdout: auto.holdout };
  // The same history trains the same candidate, bit for bit: once it is active or judged, a run
  // has nothing new to say, and its report (the promotion that activated it) must stay.
  if (meta.version === activeMeta.version) {
    throw new RetrainError(
      `${o.historyDir}: nothing new to train on: the candidate is the active version ${meta.version}; its report is left as it is`,
    );
  }
  const judged = await access(reportPath(o.registryDir, o.model, meta.version)).then(
    () => true,
    () => false,
  );
  if (judged) {
    throw new RetrainError(
      `${o.historyDir}: nothing new to train on: the candidate ${meta.version} was judged before; its report is left as it is`,
    );
  }
  const written = await registry.write(onnx, meta, { activate: false, by: o.by ?? "retrain" });
  say(`candidate ${o.model}@${meta.version} ${written.created ? "written" : "already there"}`);

  const std = sensorStd(train.values, train.nFrames, activeMeta.n_features);
  const injected = injectEvents(prepared.recent.runs, std, {
    perKind: o.eventsPerKind ?? EVENTS_PER_KIND,
    seed: o.seed ?? 1,
    windowSize: activeMeta.window_size,
  });
  // What operators judged a false positive is normal now: injected anomalies that stay within it
  // are left out for both models (false_positive_cover.ts says which, and why).
  const cover = falsePositiveCover(train, std);
  const { counted: events, leftOut } = leaveOutCovered(injected, cover);
  if (leftOut.events) say(`${leftOut.events} injected anomalies left out: ${COVER_RULE}`);
  // Without injected events the gate cannot tell a candidate that finds nothing: it holds it.
  const needed = injectionRunFrames(activeMeta.window_size);
  const longest = prepared.recent.runs.reduce((m, r) => Math.max(m, r.frames.length), 0);
  const injectionShort =
    longest < needed
      ? `no recent run of >= ${needed} frames (the longest of ${prepared.recent.runs.length} has ${longest}: HISTORY_RUN_FRAMES below ${needed}, or the line stops more often)`
      : undefined;
  if (injectionShort) say(`warning: no anomalies injected: ${injectionShort}; the gate will hold`);
  else if (events.length < MIN_INJECTED_EVENTS * 5) {
    say(`warning: ${events.length} injected anomalies counted; a kind with none holds the gate`);
  }
  const data = { recent: prepared.recent.runs, confirmed: prepared.confirmed, events };
  const active = await load(activeRef, activeMeta, o);
  let report: RetrainReport;
  try {
    say(`scoring the active version ${activeMeta.version}`);
    const activeMetrics = await measure(active, data, o.settings);
    let candidate: ScoringModel | undefined;
    let loadError: string | undefined;
    try {
      candidate = await load(written.ref, await verifyVersion(written.ref), o);
    } catch (error) {
      loadError = (error as Error).message;
    }
    let gate: ReturnType<typeof decide> | undefined;
    let stuckCheckLost: ReturnType<typeof stuckDetectionLost> | undefined;
    let candidateMetrics: Awaited<ReturnType<typeof measure>> | undefined;
    if (candidate) {
      try {
        say(`scoring the candidate ${meta.version}`);
        candidateMetrics = await measure(candidate, data, o.settings);
        stuckCheckLost = stuckDetectionLost(
          activeStuckCheck,
          stuckDetection(onnx, meta),
          activeMeta.feature_names,
          stuck?.sensors,
        );
        gate = decide(activeMetrics, candidateMetrics, {
          flat,
          stuckDetectionLost: stuckCheckLost.stuck,
          injectionShort,
        });
      } finally {
        await candidate.close();
      }
    }
    const decision = gate?.decision ?? "held";
    report = {
      model: o.model,
      candidate_version: meta.version,
      active_version: activeMeta.version,
      decision,
      reasons: gate?.reasons ?? [`the candidate could not be loaded: ${loadError}`],
      promote: o.promote,
      activated: null,
      decided_at: new Date().toISOString(),
      criteria: gate?.criteria ?? [],
      tolerances: TOLERANCES,
      models: { active: activeMetrics, candidate: candidateMetrics ?? null },
      data: {
        history_dir: o.historyDir,
        chunks: read.chunks,
        frames_read: read.frames.length,
        lookback: read.lookback ?? null,
        skipped_records: read.skippedRecords,
        warnings: read.warnings,
        time_range: {
          // Not Math.min(...xs): a spread of more than ~120,000 frames overflows the stack.
          from: read.frames.length
            ? new Date(
                read.frames.reduce((a, f) => Math.min(a, f.timestamp), Number.POSITIVE_INFINITY),
              ).toISOString()
            : null,
          to: read.frames.length
            ? new Date(
                read.frames.reduce((a, f) => Math.max(a, f.timestamp), Number.NEGATIVE_INFINITY),
              ).toISOString()
            : null,
        },
        usable_frames: prepared.usable,
        false_positive_frames_used: prepared.falsePositiveFrames,
        excluded_read: prepared.excluded,
        excluded_before_recording: read.index.excluded,
        training: { frames: train.nFrames, runs: train.runs, from: source.from, to: source.to },
        recent: {
          frames: prepared.recent.frames,
          runs: prepared.recent.runs.length,
          from: new Date(prepared.recent.from).toISOString(),
          to: new Date(prepared.recent.to).toISOString(),
        },
        confirmed_incidents: prepared.confirmed.map((c) => c.id),
        injected: {
          per_kind: o.eventsPerKind ?? EVENTS_PER_KIND,
          seed: o.seed ?? 1,
          events: events.length,
          left_out: {
            events: leftOut.events,
            rule: COVER_RULE,
            ...listedLeftOut(leftOut.sensors, activeMeta.feature_names),
          },
        },
        stuck_left_out: {
          rule: "a sensor the active version checks for being stuck that holds one reading exactly for 5 frames or more: those frames are cut out of the training series, unless that is over half of it",
          frames: stuck?.dropped ?? 0,
          sensors: stuck?.sensors ?? [],
          check_dropped_otherwise: {
            why: "the candidate does not check these for being stuck, which the active version does, though none held a reading for 5 frames in its training series: more than 1 % of their frame-to-frame changes there were exact repeats (quantised readings), or a normal window sat still",
            count: stuckCheckLost?.otherwise.length ?? 0,
            first: (stuckCheckLost?.otherwise ?? []).slice(0, 20).map((x) => x.name),
          },
        },
        sensor_check: {
          flat_share: FLAT_SHARE,
          problems: sensorCheck.problems,
          ...(sensorCheck.skipped ? { skipped: sensorCheck.skipped } : {}),
        },
      },
    };
  } finally {
    await active.close();
  }
  // The report before the pointer moves: whatever stops the run after it (a stop, a full disk),
  // an active version always has its report, and a candidate without one was never activated.
  await registry.putReport(o.model, meta.version, report);
  if (report.decision === "promoted") {
    // The gate judged the candidate against the version active when the run began: a person may
    // have activated another since (a rollback); that choice is not undone by a comparison with a
    // version no longer served, and (manual) the candidate is not offered as ready against it.
    const changed = await activeChanged(registry, o.model, activeMeta.version);
    if (changed) {
      report = heldFor(report, changed);
      await registry.putReport(o.model, meta.version, report);
      return report;
    }
  }
  if (report.decision === "promoted" && o.promote === "auto") {
    const reason = clip(`promotion gate passed${o.reason ? ` (${o.reason})` : ""}`, 1000);
    const activation: Activation = await registry.activate(o.model, meta.version, {
      by: o.by ?? "retrain",
      reason,
    });
    if (activation.from === activeMeta.version) {
      report = { ...report, activated: activation };
    } else {
      // Another activation landed between the check above and this one: the pointer goes back
      // to the version it named (unless it moved again meanwhile), the candidate is held.
      const why = `the active version changed during the run: the gate compared the candidate with ${activeMeta.version}, the registry named ${activation.from ?? "none"} when it was activated; put back`;
      if (activation.from && (await registry.activeVersion(o.model)) === meta.version) {
        await registry.activate(o.model, activation.from, { by: "retrain", reason: why });
      }
      report = heldFor(report, why);
    }
    await registry.putReport(o.model, meta.version, report);
  }
  return report;
}

/**
 * Why a promotion must not go ahead, when the registry's active version is no longer `judged`
 * (the one the gate compared the candidate with); undefined when it still is.
 */
async function activeChanged(
  registry: ModelRegistry,
  model: string,
  judged: string,
): Promise<string | undefined> {
  let now: string | undefined;
  try {
    now = await registry.activeVersion(model);
  } catch (error) {
    return `the active version changed during the run: the registry's pointer cannot be read (${(error as Error).message})`;
  }
  if (now === judged) return undefined;
  const last = (await registry.activations(model).catch(() => [])).at(-1);
  const who =
    last && last.version === now
      ? ` (activated by ${last.by} at ${last.at}${last.reason ? `: ${last.reason}` : ""})`
      : "";
  return `the active version changed during the run: the gate compared the candidate with ${judged}, the registry names ${now ?? "none"} since${who}; not activated`;
}

/** `text` cut to at most `max` UTF-16 units (an activation's reason: 1000), never inside a pair. */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  return `${/[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut}…`;
}

/** `report` held for `why` (first among its reasons), the gate's own reasons kept after it. */
const heldFor = (report: RetrainReport, why: string): RetrainReport => ({
  ...report,
  decision: "held",
  reasons: [why, ...report.reasons],
  activated: null,
});
