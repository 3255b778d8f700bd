// `npm run train`: fits, calibrates and exports the feature-wise models (user data or the simulated plant).

import { constants, existsSync, statSync } from "node:fs";
import { access, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { commandLine } from "../../contracts/command_line.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import { MODEL_NAME_PATTERN } from "../../contracts/models_api.ts";
import {
  formatRunningCondition,
  parseRunningCondition,
  type RunningCondition,
} from "../../contracts/running_condition.ts";
import {
  ModelRegistry,
  NatsModelRegistry,
  NatsRegistryError,
  RegistryError,
  verifyVersion,
} from "../../engine/infer/mod.ts";
import type { FeaturewiseKind } from "../featurewise/params.ts";
import { TRAIN_DEFAULTS, trainFeaturewise } from "../featurewise/train.ts";
import { DEFAULT_PLANT_SEED } from "../signal/mod.ts";
import { buildArtifacts, writeArtifacts } from "./artifacts.ts";
import { onnxLoader } from "./auto_onnx.ts";
import { AUTO_HOLDOUT_SHARE, autoMinFrames, chooseSetting } from "./auto_setting.ts";
import { constantColumns } from "./constant_columns.ts";
import { InputError, type LoadedSeries, loadSeries } from "./input.ts";
import { plantSeries } from "./plant_series.ts";
import { runningRowsOnly } from "./running_rows.ts";

const USAGE = `usage: npm run train -- --out DIR [--input FILE.npy|FILE.csv] [--model NAME] [--kind svdd|linear]
                          [--activate [--reset-windows] | --flat [--overwrite]] [--by WHO] [--publish NATS_URL [--nats-stream NAME] [--version V]]
                          [--seed N] [--features N] [--frames N] [--window N] [--plant-seed N]
                          [--nu X] [--tail-margin X] [--alpha-frame X] [--cal-fraction X]
                          [--cross-components N] [--drift-max X] [--baseline-alpha X]
                          [--running "SENSOR>X"] [--time-column NAME] [--auto]

--out is required: there is no default folder, so that no run replaces models in place by accident.
With --model, writes a new version of NAME into the model registry under --out (DIR/NAME/VERSION/,
the version being the metadata's), activated only when NAME has no active version yet, or with
--activate. A version with other sensors or another window than the active one is written but not
activated (exit 1): a running engine does not follow it, and its next start would refuse every
frame of the old sensors. Switch a running engine with POST /models/NAME/activate and
"reset_windows": true, or pass --reset-windows to activate it for the next start anyway.
--flat writes DIR/NAME.onnx + DIR/NAME.json instead (the layout of the committed models), refused
when DIR/NAME/ exists: the engine serves that registry folder, not flat files beside it.
Without --model, writes both standard models, flat: featurewise_ocsvm (svdd) and featurewise_ocsvm_linear
(with --kind, only the one of that kind). Flat files already in DIR are replaced only with
--overwrite (npm run train -- --out models --overwrite rebuilds the committed models; the engine
reads them), refused before any training otherwise.
Without --input, trains on the simulated plant (--features, default 25000; --frames, default 3000).
--publish also publishes the version to the scale-out registry of NATS_STREAM --nats-stream
(default FRAMES: Object Store <stream>_models, pointer in KV <stream>_model_pointer), activated
there with --activate or when none is active; with --version V it trains nothing and publishes
version V of --model from the registry under --out.
--running "SENSOR>X" (or >=, <, <=) is when the machine runs: rows where it fails are left out of
training, and the engine neither scores nor records windows in which it fails. SENSOR may hold
spaces and <>= (the text splits at its last operator): --running "Motor Speed [rpm]>100".
A CSV column named timestamp, time, date, datetime or ts (any case), or the one --time-column
names, holds the rows' times, not a sensor: numbers (epoch seconds or ms) or ISO 8601 date-times,
strictly increasing from row to row (oldest first).
--auto chooses the window size and tail margin among a few settings by a backtest on the input
itself (its last 20 % held out as normal data, anomalies injected into it; it needs at least ${autoMinFrames()}
rows); not with --window or --tail-margin.
Mistakes in the arguments exit 2 with this usage, before any work; unusable input data exits 1.`;

// A mistake in the arguments is printed with the usage, exit status 2, before any work.
const cli = commandLine("train", USAGE, parseTrainArgs);
// Annotated: a call to it then narrows like a throw.
const usageError: (message: string) => never = cli.usageError;

function parseTrainArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      input: { type: "string" },
      out: { type: "string" },
      model: { type: "string" },
      kind: { type: "string" },
      seed: { type: "string" },
      features: { type: "string" },
      frames: { type: "string" },
      window: { type: "string" },
      "plant-seed": { type: "string" },
      nu: { type: "string" },
      "tail-margin": { type: "string" },
      "alpha-frame": { type: "string" },
      "cal-fraction": { type: "string" },
      "cross-components": { type: "string" },
      "drift-max": { type: "string" },
      "baseline-alpha": { type: "string" },
      activate: { type: "boolean" },
      "reset-windows": { type: "boolean" },
      flat: { type: "boolean" },
      overwrite: { type: "boolean" },
      by: { type: "string" },
      publish: { type: "string" },
      "nats-stream": { type: "string" },
      version: { type: "string" },
      running: { type: "string" },
      "time-column": { type: "string" },
      auto: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}
type TrainArgs = ReturnType<typeof parseTrainArgs>["values"];

/** The scale-out registry `--publish` writes to, opened before any training. */
interface Publisher {
  registry: NatsModelRegistry;
  stream: string;
  close(): Promise<void>;
}

/**
 * Connects to NATS first, so that an unreachable server stops the run before minutes of
 * training and a local write it would then not publish.
 */
async function openPublisher(url: string, stream: string): Promise<Publisher> {
  const nc = await connect({ servers: url.split(","), timeout: 5000 }).catch((error: Error) => {
    throw new InputError(`'--publish': cannot reach NATS at ${url}: ${error.message}`);
  });
  try {
    const registry = await NatsModelRegistry.open(nc, stream);
    return { registry, stream, close: () => nc.close() };
  } catch (error) {
    await nc.close();
    const known = error instanceof RegistryError || error instanceof NatsRegistryError;
    throw known ? new InputError(`'--publish': ${(error as Error).message}`) : error;
  }
}

/** Publishes `ref` to the opened scale-out registry; the answer says what happened there. */
async function publishTo(
  publisher: Publisher,
  ref: { name: string; version: string; dir: string; layout: "registry" | "flat" },
  options: { activate?: boolean; by: string },
): Promise<void> {
  const { registry, stream } = publisher;
  // Under scale-out the registry itself refuses to activate a version of other sensors or window
  // (`sameLayout`): workers switch only between versions that read frames alike.
  const done = await registry.publishFromDisk(ref, options).catch((error: Error) => {
    const known = error instanceof RegistryError || error instanceof NatsRegistryError;
    throw known ? new InputError(`'--publish': ${error.message}`) : error;
  });
  // Publishing the version that is already active there activates nothing: say so.
  const state = done.activated
    ? `active there (was ${done.activated.from ?? "none"})`
    : (await registry.pointer(ref.name))?.version === ref.version
      ? "already active there"
      : "not active there (activate it with --activate or POST /models/NAME/activate)";
  console.error(
    `[train] ${ref.name}@${ref.version} ${done.created ? "published" : "already published"} to ${stream}_models; ${state}`,
  );
}

/**
 * How `next` reads frames differently from the active `current` (other sensors, or another
 * window), or undefined when it reads them alike: an engine switches to it only with
 * `reset_windows`, its streams starting afresh.
 */
function layoutChange(current: ModelMetadata, next: ModelMetadata): string | undefined {
  const sameNames =
    current.feature_names.length === next.feature_names.length &&
    current.feature_names.every((name, i) => name === next.feature_names[i]);
  if (sameNames && current.window_size === next.window_size) return undefined;
  const sensors = sameNames
    ? `${next.n_features} sensors`
    : `${next.n_features} sensors (${current.n_features} of other names or order in the active one)`;
  return `it reads ${sensors} in windows of ${next.window_size}, the active ${current.version} ${current.n_features} in windows of ${current.window_size}`;
}

/** Why a version with another layout was written (or published) but not activated, and how to. */
const notFollowed = (
  name: string,
  version: string,
  where: string,
  change: string,
  active: string,
) =>
  `${name}@${version} is written to ${where} but not activated: ${change}. A running engine does not follow such a version, and its next start would refuse every frame of the sensors ${active} reads. Switch a running engine with POST /models/${name}/activate and "reset_windows": true, or run again with --reset-windows to activate it for the next start.`;

/** The metadata of `name`'s active version in `registry`, when it has one that reads whole. */
async function activeMetadata(
  registry: ModelRegistry,
  name: string,
): Promise<ModelMetadata | undefined> {
  try {
    if (!(await registry.model(name)).active) return undefined;
    return await verifyVersion(await registry.resolve(name));
  } catch {
    // No such model yet, or an active version that does not verify: nothing to compare with.
    return undefined;
  }
}

/** Stops before training when `--out` cannot take the models: a file, or not writable. */
async function checkOutDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const reason =
      code === "EEXIST" || code === "ENOTDIR"
        ? "is a file or under one, not a folder"
        : code === "EACCES" || code === "EPERM" || code === "EROFS"
          ? "is not writable"
          : (error as Error).message;
    usageError(`'--out' ${dir}: ${reason}`);
  }
}

/** Whether `path` is a folder; false where it cannot be one (`--out` a file is refused later). */
function isFolder(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

/**
 * A model name that is also a safe file and folder name everywhere it goes (the registry, NATS
 * keys): `.` and `..` would write beside or above `--out`.
 */
function checkModelName(name: string): void {
  if (!MODEL_NAME_PATTERN.test(name) || name.includes("..") || name.endsWith(".")) {
    usageError(
      `'--model' must be 1..128 of A-Z a-z 0-9 . _ -, starting with a letter or digit, without '..' or a trailing '.', got '${name}'`,
    );
  }
}

/** How many names of constant sensors the warning lists; the metadata keeps them all. */
const CONSTANT_NAMES_SHOWN = 5;

const CONSTANT_RULE =
  "1st..99th percentile spread of the training rows is 0 (as the retraining's flat check): the model flags any change of these sensors";

const KINDS: Record<string, FeaturewiseKind> = {
  svdd: "featurewise_ocsvm_svdd",
  linear: "featurewise_ocsvm_linear",
};

/** Reads a numeric option within [min, max]; `integer` also requires a whole number. */
function numberArg(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
  integer = false,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  const ok = integer ? Number.isInteger(n) : Number.isFinite(n);
  if (!ok || n < min || n > max) {
    const kind = integer ? `an integer ${min}..${max}` : `a number in [${min}, ${max}]`;
    usageError(`'--${name}' must be ${kind}, got '${raw}'`);
  }
  return n;
}

const intArg = (
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
) => numberArg(name, raw, fallback, min, max, true);
const numArg = (
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
) => numberArg(name, raw, fallback, min, max);

async function main(a: TrainArgs): Promise<void> {
  if (a.auto && (a.window !== undefined || a["tail-margin"] !== undefined)) {
    usageError(
      "'--auto' chooses the window and tail margin: not with '--window' or '--tail-margin'",
    );
  }
  const seed = intArg("seed", a.seed, TRAIN_DEFAULTS.seed, 0, 2 ** 31 - 1);
  let windowSize = intArg("window", a.window, TRAIN_DEFAULTS.windowSize, 2, 64);
  const nu = numArg("nu", a.nu, TRAIN_DEFAULTS.nu, 0.01, 0.5);
  let tailMargin = numArg("tail-margin", a["tail-margin"], TRAIN_DEFAULTS.tailMargin, 0, 5);
  const alphaFrame = numArg("alpha-frame", a["alpha-frame"], TRAIN_DEFAULTS.alphaFrame, 1e-12, 0.5);
  const calFraction = numArg(
    "cal-fraction",
    a["cal-fraction"],
    TRAIN_DEFAULTS.calFraction,
    0.05,
    0.9,
  );
  const crossComponents = intArg(
    "cross-components",
    a["cross-components"],
    TRAIN_DEFAULTS.crossComponents,
    0,
    200,
  );
  const driftMax = numArg("drift-max", a["drift-max"], TRAIN_DEFAULTS.driftMax, 0, 1e12);
  const baselineAlpha = numArg(
    "baseline-alpha",
    a["baseline-alpha"],
    TRAIN_DEFAULTS.baselineAlpha,
    0,
    1,
  );
  // No default: a default folder is one a run could replace models in by accident.
  const outDir = a.out ?? usageError("'--out DIR' is required: the folder the models go to");
  if (a.model !== undefined) checkModelName(a.model);
  // Versions go to the registry for a named model; the two standard models stay flat.
  const flat = a.model === undefined || a.flat === true;
  if (a.activate && flat) {
    usageError("'--activate' needs '--model' and the registry layout (not '--flat')");
  }
  if (a["reset-windows"] && !a.activate) {
    usageError("'--reset-windows' applies only with '--activate'");
  }
  if (a.overwrite && !flat) {
    usageError(
      "'--overwrite' applies only to flat files ('--flat', or no '--model'): registry versions are never replaced",
    );
  }
  const registry = flat ? undefined : new ModelRegistry(outDir);
  const stream = a["nats-stream"] ?? "FRAMES";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(stream)) {
    usageError(`'--nats-stream' must match [A-Za-z0-9_-]{1,64}, got '${stream}'`);
  }
  if ((a.version !== undefined || a["nats-stream"] !== undefined) && a.publish === undefined) {
    usageError("'--version' and '--nats-stream' apply only with '--publish'");
  }
  if (a.publish !== undefined && a.model === undefined) {
    usageError("'--publish' needs '--model'");
  }
  if (a.publish !== undefined && a.version !== undefined && a.overwrite) {
    usageError("'--overwrite' does not apply with '--version' (nothing is trained or written)");
  }
  if (a.publish !== undefined && a.version !== undefined) {
    // An existing version: nothing is trained.
    const ref = await new ModelRegistry(outDir)
      .resolve(a.model as string, a.version)
      .catch((error: Error) => {
        throw error instanceof RegistryError ? new InputError(error.message) : error;
      });
    const publisher = await openPublisher(a.publish, stream);
    try {
      await publishTo(publisher, ref, { activate: a.activate, by: a.by ?? "train" });
    } finally {
      await publisher.close();
    }
    return;
  }
  if (a.kind !== undefined && !(a.kind in KINDS)) {
    usageError(`'--kind' must be svdd or linear, got '${a.kind}'`);
  }
  if (a.input !== undefined) {
    if (a.features !== undefined || a.frames !== undefined || a["plant-seed"] !== undefined) {
      usageError("'--features', '--frames' and '--plant-seed' apply only without '--input'");
    }
  }
  if (a["time-column"] !== undefined && !a.input?.endsWith(".csv")) {
    usageError("'--time-column' applies only with a .csv '--input'");
  }
  let runningArg: RunningCondition | undefined;
  if (a.running !== undefined) {
    try {
      runningArg = parseRunningCondition(a.running);
    } catch (error) {
      usageError(`'--running': ${(error as Error).message}`);
    }
  }
  // The simulated plant's shape (without --input).
  const plantFeatures = intArg("features", a.features, 25_000, 1, 1_000_000);
  const plantFrames = intArg("frames", a.frames, 3000, 1, 1_000_000);
  const plantSeed = intArg("plant-seed", a["plant-seed"], DEFAULT_PLANT_SEED, 0, 2 ** 31 - 1);
  const jobs: { name: string; kind: FeaturewiseKind }[] =
    a.model === undefined
      ? [
          // The standard names fix the kind, so --kind only picks which one to train.
          { name: "featurewise_ocsvm", kind: KINDS.svdd },
          { name: "featurewise_ocsvm_linear", kind: KINDS.linear },
        ].filter((j) => a.kind === undefined || j.kind === KINDS[a.kind])
      : [
          {
            name: a.model,
            kind: KINDS[a.kind ?? (a.model.includes("linear") ? "linear" : "svdd")],
          },
        ];
  if (flat) {
    // The engine's registry reads DIR/NAME/ before DIR/NAME.onnx + .json: flat files written
    // beside such a folder would never be served, whatever the run printed.
    const shadowed = jobs.find((job) => isFolder(join(outDir, job.name)));
    if (shadowed) {
      usageError(
        `'--out' ${outDir} holds ${shadowed.name}/ in the registry layout, which the engine serves instead of flat files: leave out '--flat' to write a new version there, or give another '--out'`,
      );
    }
  }
  if (flat && !a.overwrite) {
    // The committed models are flat files the engine reads: replacing them takes a word.
    const there = jobs
      .flatMap((job) => [`${job.name}.onnx`, `${job.name}.json`])
      .filter((file) => existsSync(join(outDir, file)));
    if (there.length > 0) {
      usageError(
        `'--out' ${outDir} already holds ${there.join(", ")}: add '--overwrite' to replace them, or give another '--out'`,
      );
    }
  }
  await checkOutDir(outDir);
  // Closed at the end; a failure ends the process (exit 1), which closes it.
  const publisher = a.publish === undefined ? undefined : await openPublisher(a.publish, stream);
  /** Activations not done because the version reads frames differently (said at the end, exit 1). */
  const refusals: string[] = [];

  const t0 = performance.now();
  let series: LoadedSeries;
  let source: Record<string, unknown>;
  if (a.input !== undefined) {
    console.error(`[train] reading ${a.input}`);
    series = await loadSeries(a.input, { timeColumn: a["time-column"] });
    for (const warning of series.warnings ?? []) console.error(`[train] warning: ${warning}`);
    if (series.timeColumn !== undefined) {
      console.error(
        `[train] time column '${series.timeColumn}': not a sensor; rows in increasing time order`,
      );
    }
    source = {
      kind: "file",
      file: a.input.split(/[\\/]/).pop(),
      frames: series.nFrames,
      features: series.nFeatures,
      ...(series.timeColumn === undefined ? {} : { time_column: series.timeColumn }),
    };
  } else {
    console.error(
      `[train] simulating ${plantFrames} frames x ${plantFeatures} features (plant seed ${plantSeed})`,
    );
    series = plantSeries(plantFeatures, plantFrames, plantSeed, seed);
    source = {
      kind: "simulated_plant",
      plant_seed: plantSeed,
      noise_seed: `mixSeed(${seed}, 0x7a11)`,
      frames: plantFrames,
      features: plantFeatures,
    };
  }
  // The simulated plant says when it runs (its drive sensor); a file needs --running.
  let running: RunningCondition | undefined =
    "running" in series ? (series.running as RunningCondition | undefined) : undefined;
  let stoppedFrames = 0;
  if (runningArg !== undefined) {
    running = runningArg;
    ({ series, stoppedFrames } = runningRowsOnly(series, running));
    console.error(`[train] ${stoppedFrames} frames left out: the machine was not running`);
  }
  const { nFrames, nFeatures } = series;
  if (nFeatures < 1) throw new InputError("input has no features");
  if (nFrames < windowSize) {
    throw new InputError(`too few rows: ${nFrames} frames, a window needs ${windowSize}`);
  }
  if (a.auto && nFrames < autoMinFrames()) {
    throw new InputError(
      `'--auto' needs at least ${autoMinFrames()} rows (it holds out the last ${AUTO_HOLDOUT_SHARE * 100} % and trains every setting on the rest), got ${nFrames}`,
    );
  }
  console.error(
    `[train] ${nFrames} frames x ${nFeatures} features loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  // A sensor that never varies is learnt as a constant: any change of it later, however small,
  // scores 1. The model stays as trained (leaving a sensor out is the user's call); say so. The
  // running condition's sensor is left out: a run flag is constant on the running rows, and the
  // engine scores no window in which it changes (it would then fail the condition).
  const constant = constantColumns(series)
    .map((f) => series.featureNames[f])
    .filter((name) => name !== running?.feature);
  if (constant.length > 0) {
    const shown = constant.slice(0, CONSTANT_NAMES_SHOWN).join(", ");
    const more =
      constant.length > CONSTANT_NAMES_SHOWN
        ? `, and ${constant.length - CONSTANT_NAMES_SHOWN} more`
        : "";
    console.error(
      `[train] warning: ${constant.length} of ${nFeatures} sensors do not vary in the training data (${shown}${more}): the model will flag any change of them; leave them out of the input, or retrain once they vary`,
    );
  }

  for (const job of jobs) {
    const t1 = performance.now();
    let lastPct = -1;
    let result: ReturnType<typeof trainFeaturewise>;
    let auto: Awaited<ReturnType<typeof chooseSetting>> | undefined;
    try {
      if (a.auto) {
        const shared = { kind: job.kind, seed, nu, alphaFrame, calFraction, crossComponents };
        auto = await chooseSetting(series, {
          train: { ...shared, driftMax, baselineAlpha },
          load: onnxLoader(),
          say: (line) => console.error(`[train] ${job.name} --auto: ${line}`),
        });
        ({ windowSize, tailMargin } = auto.chosen);
        console.error(
          `[train] ${job.name} --auto: window ${windowSize}, tail margin ${tailMargin} (${auto.reason})`,
        );
      }
      result = trainFeaturewise(series, {
        kind: job.kind,
        windowSize,
        seed,
        nu,
        tailMargin,
        alphaFrame,
        calFraction,
        crossComponents,
        driftMax,
        baselineAlpha,
        onProgress(done, total) {
          const pct = Math.floor((100 * done) / total / 10) * 10;
          if (pct !== lastPct) {
            lastPct = pct;
            console.error(
              `[train] ${job.name}: ${done}/${total} features (${Math.floor((100 * done) / total)}%)`,
            );
          }
        },
      });
    } catch (err) {
      if (err instanceof RangeError && /too few rows/.test(err.message))
        throw new InputError(err.message);
      if (err instanceof RangeError && /no candidate setting/.test(err.message)) {
        throw new InputError(
          `'--auto': ${err.message}: it needs at least ${autoMinFrames()} rows, got ${nFrames}`,
        );
      }
      throw err;
    }
    const { onnx, meta } = buildArtifacts(job.name, result, series.featureNames, source, {
      running,
    });
    if (auto)
      meta.training.auto = { chosen: auto.chosen, reason: auto.reason, holdout: auto.holdout };
    if (running) {
      meta.training.running = { condition: formatRunningCondition(running), stoppedFrames };
    }
    if (constant.length > 0) {
      meta.training.constant_sensors = { rule: CONSTANT_RULE, names: constant };
    }
    if (registry) {
      // A version that reads frames differently is written, not activated (said at the end).
      let activate = a.activate;
      if (activate && !a["reset-windows"]) {
        const current = await activeMetadata(registry, job.name);
        const change = current && current.version !== meta.version && layoutChange(current, meta);
        if (change && current) {
          activate = false;
          refusals.push(notFollowed(job.name, meta.version, outDir, change, current.version));
        }
      }
      const written = await registry
        .write(onnx, meta, { activate, by: a.by ?? "train" })
        .catch((error: Error) => {
          throw error instanceof RegistryError ? new InputError(error.message) : error;
        });
      const secs = (performance.now() - t1) / 1000;
      console.error(`[train] ${job.name} (${job.kind}) trained in ${secs.toFixed(1)} s`);
      // Writing the version that is already active again activates nothing: say so.
      const state = written.activated
        ? `active (was ${written.activated.from ?? "none"})`
        : (await registry.model(job.name)).active === meta.version
          ? "already active"
          : "not active (activate it with --activate or POST /models/NAME/activate)";
      console.error(
        `[train] ${job.name}@${meta.version} ${written.repaired ? "repaired (its files were damaged)" : written.created ? "written" : "already there"}; ${state}`,
      );
      if (publisher) {
        await publishTo(publisher, written.ref, { activate, by: a.by ?? "train" });
      }
      console.log(written.ref.dir);
      continue;
    }
    const paths = await writeArtifacts(outDir, onnx, meta);
    if (publisher) {
      const ref = { name: job.name, version: meta.version, dir: outDir, layout: "flat" as const };
      await publishTo(publisher, ref, { activate: a.activate, by: a.by ?? "train" });
    }
    const secs = (performance.now() - t1) / 1000;
    console.error(`[train] ${job.name} (${job.kind}) trained in ${secs.toFixed(1)} s`);
    if (result.baseline) {
      console.error(
        `[train] ${job.name}: ${result.baseline.features.length} of ${meta.n_features} sensors drift (index > ${driftMax}) and follow a running level (alpha ${result.baseline.alpha})`,
      );
    }
    console.log(
      `${paths.onnxPath} ${(onnx.length / 1e6).toFixed(2)} MB sha256 ${meta.onnx_sha256.slice(0, 12)}`,
    );
    console.log(paths.jsonPath);
  }
  await publisher?.close();
  if (refusals.length) throw new InputError(refusals.join("\n"));
}

main(cli.parsed.values).catch((err: unknown) => {
  // Input that cannot be trained on (the arguments were fine), or a file that cannot be read or
  // written (a full disk, a read-only folder): its message, exit 1; anything else with its stack.
  const known = err instanceof InputError || isSystemError(err);
  console.error(`train: ${known ? (err as Error).message : (err as Error).stack}`);
  process.exit(1);
});

/** An error of the file system or another system call (`ENOSPC`, `EACCES`, ...): it names itself. */
function isSystemError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  return typeof e?.code === "string" && typeof e.syscall === "string";
}
