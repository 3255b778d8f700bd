// `npm run eval`: detection quality on the simulated plant and on public labelled data (SKAB, Tennessee Eastman).
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { commandLine, outputFileProblem } from "../../contracts/command_line.ts";
import { ConfigError } from "../../contracts/config.ts";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import type { FeaturewiseKind, LinearParams } from "../featurewise/params.ts";
import { TRAIN_DEFAULTS, type TrainResult, trainFeaturewise } from "../featurewise/train.ts";
import { exportOnnx, INPUT_NAME, OUTPUT_NAME } from "../onnx/export.ts";
import { paramsFromOnnx } from "../reference/mod.ts";
import { InputError } from "../train/input.ts";
import { plantSeries } from "../train/plant_series.ts";
import { driftScenarioText, runDriftScenario } from "./drift_scenario.ts";
import { faultKindTable, runFaultKindEval } from "./fault_kind_eval.ts";
import { DatasetError } from "./real/datasets.ts";
import {
  IncidentRecorder,
  type IncidentSettings,
  type IncidentSpan,
  incidentMetrics,
  incidentSettings,
  incidentTable,
} from "./real/incidents.ts";
import type { OursTrainOptions } from "./real/ours.ts";
import { runSkabSuite, runTepSuite } from "./real/suite.ts";
import { markdownTable, operatingPoints, operatingPointsTable, summarise } from "./report.ts";
import { onnxScorer, type Scorer } from "./scorers.ts";
import { baselineScorers, runSuite } from "./suite.ts";

const USAGE = `usage: npm run eval -- [--suite plant,drift,skab,tep] [--datasets DIR] [--json FILE]
                         [--skab-train JSON] [--tep-train JSON]
                         [--models DIR] [--clean-frames N] [--events N] [--eval-seed N]
                         [--foreign-features N]

--suite       which suites to run (default: plant and drift, plus skab and tep when --datasets holds them)
--datasets    root holding skab/ and tep/ as published (default: ../shared/datasets when present)
--skab-train, --tep-train
              training options of our model for every file of that dataset, as JSON
              (e.g. '{"alphaFrame":0.001,"tailMargin":0.5}'; keys of trainFeaturewise's options)
--models ... --foreign-features: the simulated plant suite's settings
An option for a suite that does not run is refused. Mistakes in the arguments exit 2 with this
usage, before any suite runs; missing or malformed data and models exit 1.`;

// A mistake in the arguments is printed with the usage, exit status 2, before any work.
const cli = commandLine("eval", USAGE, parseEvalArgs);
// Annotated: a call to it then narrows like a throw.
const usageError: (message: string) => never = cli.usageError;

function parseEvalArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      suite: { type: "string" },
      datasets: { type: "string" },
      "skab-train": { type: "string" },
      "tep-train": { type: "string" },
      models: { type: "string" },
      "clean-frames": { type: "string" },
      events: { type: "string" },
      "eval-seed": { type: "string" },
      "foreign-features": { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
type EvalArgs = ReturnType<typeof parseEvalArgs>["values"];

const SUITES = ["plant", "drift", "skab", "tep"] as const;
/** `../shared/datasets` from the project root (this file is `models/eval/cli.ts`). */
const DEFAULT_DATASETS = join(
  fileURLToPath(new URL("../../..", import.meta.url)),
  "shared",
  "datasets",
);
type Suite = (typeof SUITES)[number];

const log = (line: string) => console.error(line);

interface LoadedModel {
  meta: ModelMetadata;
  bytes: Uint8Array;
}

async function loadModel(dir: string, name: string): Promise<LoadedModel> {
  const json = join(dir, `${name}.json`);
  const onnx = join(dir, `${name}.onnx`);
  try {
    const meta = parseModelMetadata(JSON.parse(await readFile(json, "utf8")));
    return { meta, bytes: new Uint8Array(await readFile(onnx)) };
  } catch (error) {
    const { code, path, message } = error as { code?: string; path?: string; message: string };
    const where = code === "ENOENT" ? `${path ?? json}: no such file` : `${json}: ${message}`;
    throw new InputError(
      `${where} (the plant suite reads featurewise_ocsvm and featurewise_ocsvm_linear from '--models DIR', default models)`,
    );
  }
}

/**
 * The plant suite rebuilds the models' training series from their metadata, so both must come
 * from `npm run train` on the simulated plant (no --input), the same plant and shape.
 */
function checkPlantModels(dir: string, main: LoadedModel, lin: LoadedModel): void {
  const data = main.meta.training.data as { kind?: string; plant_seed?: number; file?: string };
  if (data.plant_seed === undefined) {
    const from = data.file ? `the file ${data.file}` : `${data.kind ?? "unknown"} data`;
    throw new InputError(
      `'--models ${dir}': featurewise_ocsvm was trained on ${from}, not on the simulated plant: the plant suite needs the models npm run train writes without --input`,
    );
  }
  const linData = lin.meta.training.data as { plant_seed?: number };
  const same =
    linData.plant_seed === data.plant_seed &&
    lin.meta.n_features === main.meta.n_features &&
    lin.meta.window_size === main.meta.window_size;
  if (!same) {
    throw new InputError(
      `'--models ${dir}': featurewise_ocsvm_linear (plant ${linData.plant_seed ?? "none"}, ${lin.meta.n_features} features, window ${lin.meta.window_size}) was not trained on the same plant and shape as featurewise_ocsvm (plant ${data.plant_seed}, ${main.meta.n_features} features, window ${main.meta.window_size}): train both in one npm run train`,
    );
  }
}

function int(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < min) {
    usageError(`'--${name}' must be an integer >= ${min}, got '${raw}'`);
  }
  return n;
}

interface PlantArgs {
  models?: string;
  "clean-frames"?: string;
  events?: string;
  "eval-seed"?: string;
  "foreign-features"?: string;
}

function trainOptions(flag: string, raw: string | undefined): OursTrainOptions {
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    usageError(`'--${flag}' must be a JSON object: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    usageError(`'--${flag}' must be a JSON object, got '${raw}'`);
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in TRAIN_DEFAULTS)) {
      usageError(
        `'--${flag}': unknown option '${key}' (known: ${Object.keys(TRAIN_DEFAULTS).join(", ")})`,
      );
    }
    if (typeof value !== "number" || !Number.isFinite(value)) {
      usageError(`'--${flag}': '${key}' must be a number, got ${JSON.stringify(value)}`);
    }
  }
  return parsed as OursTrainOptions;
}

/** The options that only one suite reads, by that suite. */
const SUITE_OPTIONS: Record<Suite, readonly (keyof EvalArgs)[]> = {
  plant: ["models", "clean-frames", "events", "eval-seed", "foreign-features"],
  drift: [],
  skab: ["skab-train"],
  tep: ["tep-train"],
};

async function main(a: EvalArgs): Promise<void> {
  const datasets = a.datasets ?? (existsSync(DEFAULT_DATASETS) ? DEFAULT_DATASETS : undefined);
  let suites: Suite[];
  if (a.suite !== undefined) {
    const asked = a.suite.split(",").map((x) => x.trim());
    for (const x of asked) {
      if (!SUITES.includes(x as Suite)) {
        usageError(`'--suite' takes ${SUITES.join(", ")}; got '${x}'`);
      }
    }
    suites = SUITES.filter((x) => asked.includes(x));
  } else {
    suites = SUITES.filter(
      (x) =>
        x === "plant" || x === "drift" || (datasets !== undefined && existsSync(join(datasets, x))),
    );
  }
  // An option of a suite that does not run would be ignored: say so instead.
  const strays = SUITES.filter((x) => !suites.includes(x)).flatMap((x) => {
    const given = SUITE_OPTIONS[x].filter((name) => a[name] !== undefined);
    return given.length > 0 ? [`${given.map((name) => `'--${name}'`).join(", ")} (${x})`] : [];
  });
  if (strays.length > 0) {
    usageError(
      `${strays.join("; ")}: for suites that do not run here (running: ${suites.join(", ") || "none"})`,
    );
  }
  if (
    a.datasets !== undefined &&
    a.suite !== undefined &&
    !suites.some((x) => x === "skab" || x === "tep")
  ) {
    usageError(
      `'--datasets' applies only to the skab and tep suites (the suites that run: ${suites.join(", ")})`,
    );
  }
  // Every option parsed before any suite runs: a typo never costs the suites before it.
  const plantSettings = suites.includes("plant") ? plantArgs(a) : undefined;
  const trainBySuite = {
    skab: trainOptions("skab-train", a["skab-train"]),
    tep: trainOptions("tep-train", a["tep-train"]),
  };
  if (a.json !== undefined) {
    const problem = await outputFileProblem(a.json);
    if (problem) usageError(`'--json ${a.json}': ${problem}`);
  }
  if (a.datasets !== undefined && !existsSync(a.datasets)) {
    throw new DatasetError(`'--datasets ${a.datasets}': no such directory`);
  }
  const real = suites.filter((x) => x !== "plant" && x !== "drift");
  if (real.length > 0 && datasets === undefined) {
    throw new DatasetError(
      `suite ${real.join(", ")} needs '--datasets DIR' (../shared/datasets is absent)`,
    );
  }
  // The plant suite's models, checked before any suite spends minutes.
  const plant = plantSettings ? await plantInputs(plantSettings) : undefined;
  // The engine's incident settings, from the same environment variables the engine reads.
  const incidentConfig = incidentSettings(process.env);
  const doc: Record<string, unknown> = {};
  const seconds: Record<string, number> = {};
  for (const suite of suites) {
    const t0 = performance.now();
    if (suite === "plant") {
      doc.plant = await plantSuite(plant as PlantInputs, incidentConfig);
    } else if (suite === "drift") {
      const report = await runDriftScenario({
        log,
        settings: {
          threshold: 0.9,
          confirmK: incidentConfig.INCIDENT_CONFIRM_K,
          confirmN: incidentConfig.INCIDENT_CONFIRM_N,
          quietWindows: incidentConfig.INCIDENT_QUIET_WINDOWS,
        },
      });
      doc.drift = report;
      console.log(`\n${driftScenarioText(report)}`);
    } else {
      const o = {
        datasets: datasets as string,
        incidents: incidentConfig,
        train: trainBySuite[suite],
        log,
      };
      const report = suite === "skab" ? await runSkabSuite(o) : await runTepSuite(o);
      doc[suite] = report.doc;
      console.log(`\n${report.text}`);
    }
    seconds[suite] = Math.round((performance.now() - t0) / 100) / 10;
  }
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
  };
  console.log(
    `\n${machine.cpu}, ${machine.cores} cores, ${machine.node}; ${Object.entries(seconds)
      .map(([k, v]) => `${k} ${v} s`)
      .join(", ")}`,
  );
  if (a.json) {
    await writeFile(a.json, `${JSON.stringify({ ...doc, machine, seconds }, null, 2)}\n`);
    log(`[eval] wrote ${a.json}`);
  }
}

interface PlantInputs {
  main: LoadedModel;
  lin: LoadedModel;
  cleanFrames: number;
  eventsPerKind: number;
  evalSeed: number;
  foreignFeatures: number;
}

type PlantSettings = Omit<PlantInputs, "main" | "lin"> & { dir: string };

/** The plant suite's settings, checked as arguments. */
function plantArgs(a: PlantArgs): PlantSettings {
  return {
    dir: a.models ?? "models",
    cleanFrames: int("clean-frames", a["clean-frames"], 10_000, 1),
    eventsPerKind: int("events", a.events, 100, 1),
    evalSeed: int("eval-seed", a["eval-seed"], 1_000_000, 0),
    foreignFeatures: int("foreign-features", a["foreign-features"], 2000, 0),
  };
}

/** The plant suite's models, read and checked against its settings. */
async function plantInputs(settings: PlantSettings): Promise<PlantInputs> {
  const { dir, cleanFrames, eventsPerKind, evalSeed, foreignFeatures } = settings;
  const main = await loadModel(dir, "featurewise_ocsvm");
  const lin = await loadModel(dir, "featurewise_ocsvm_linear");
  checkPlantModels(dir, main, lin);
  return { main, lin, cleanFrames, eventsPerKind, evalSeed, foreignFeatures };
}

/** The simulated plant suite: the committed models on fresh plant data, and a foreign plant. */
async function plantSuite(
  inputs: PlantInputs,
  incidentConfig: IncidentSettings,
): Promise<Record<string, unknown>> {
  const { main, lin, cleanFrames, eventsPerKind, evalSeed, foreignFeatures } = inputs;
  const t0 = performance.now();

  // Main suite: the committed models on the plant they were trained on, fresh noise seeds.
  const data = main.meta.training.data as { plant_seed: number; frames?: number };
  const trainSeed = main.meta.training.seed as number;
  const F = main.meta.n_features;
  const W = main.meta.window_size;
  const threshold = main.meta.default_threshold;
  const pTarget = (main.meta.score.calibration as { p_target: number }).p_target;
  log(
    `[eval] rebuilding the training series for the baselines (plant ${data.plant_seed}, seed ${trainSeed})`,
  );
  const series = plantSeries(F, data.frames ?? 3000, data.plant_seed, trainSeed);
  const linParams = paramsFromOnnx(lin.bytes, lin.meta) as LinearParams;
  const shape = {
    windowSize: W,
    nFeatures: F,
    input: main.meta.input_name,
    output: main.meta.output_name,
  };
  const scorers: Scorer[] = [
    await onnxScorer(
      "featurewise_ocsvm",
      "default: SVDD on whitened window DCT, calibrated (ONNX)",
      main.bytes,
      {
        ...shape,
        severity: main.meta.severity_output_name,
        statistic: main.meta.statistic_output_name,
        baseline: main.meta.baseline,
      },
      threshold,
    ),
    await onnxScorer(
      "featurewise_ocsvm_linear",
      "linear OCSVM, calibrated (ONNX)",
      lin.bytes,
      shape,
      threshold,
    ),
    ...baselineScorers(series, linParams, pTarget, W),
  ];
  const settings = {
    plantSeed: data.plant_seed,
    nFeatures: F,
    windowSize: W,
    cleanFrames,
    eventsPerKind,
    evalSeed,
    concurrency: 10,
    log,
  };
  // The default model's windows go to the engine's incident tracker, one segment = one stream,
  // one frame per second as the simulator sends them; its frame alarms are kept for comparison.
  const spans = new Map<string, IncidentSpan[]>();
  const recorder = new IncidentRecorder(main.meta, 1000, incidentConfig, spans);
  const alarms = new Map<string, number[]>();
  const cut = Math.fround(threshold);
  const result = await runSuite(scorers, {
    ...settings,
    tap(segment, t, s, scores, window, extras) {
      if (s !== 0) return;
      recorder.observe(segment, t, { scores, ...extras }, window);
      for (let f = 0; f < scores.length; f++) {
        if (scores[f] >= cut) {
          const a = alarms.get(segment) ?? [];
          a.push(t);
          alarms.set(segment, a);
          break;
        }
      }
    },
  });
  for (const seg of result.segments) recorder.finish(seg.name);
  const streams = result.segments.map((seg) => {
    const alarm = new Uint8Array(seg.frames);
    for (const t of alarms.get(seg.name) ?? []) alarm[t] = 1;
    return { name: seg.name, label: seg.label, testStart: 0, alarm };
  });
  const incidents = {
    all: incidentMetrics(spans, streams, W),
    ...Object.fromEntries(streams.map((st) => [st.name, incidentMetrics(spans, [st], W)])),
  };
  const summary = summarise(result);
  const points = operatingPoints(result);

  // Someone else's data: a different plant, trained in-process exactly as the CLI does.
  let foreign: Record<string, unknown> | undefined;
  if (foreignFeatures > 0) {
    const plantSeed = 4242;
    log(`[eval] foreign plant ${plantSeed}: training both models on ${foreignFeatures} features`);
    const fSeries = plantSeries(foreignFeatures, 3000, plantSeed, 7);
    const trained: Partial<Record<FeaturewiseKind, Uint8Array>> = {};
    let fLinear: LinearParams | undefined;
    let fTarget = 0;
    let fBaseline: TrainResult["baseline"];
    for (const kind of ["featurewise_ocsvm_svdd", "featurewise_ocsvm_linear"] as const) {
      const r = trainFeaturewise(fSeries, { kind, seed: 7 });
      trained[kind] = exportOnnx(r.params);
      fTarget = (r.calibration as { p_target: number }).p_target;
      if (r.params.kind === "featurewise_ocsvm_linear") fLinear = r.params;
      else fBaseline = r.baseline;
    }
    const fShape = {
      windowSize: W,
      nFeatures: foreignFeatures,
      input: INPUT_NAME,
      output: OUTPUT_NAME,
    };
    const fScorers = [
      await onnxScorer(
        "featurewise_ocsvm",
        "default, trained on the foreign plant",
        trained.featurewise_ocsvm_svdd!,
        { ...fShape, baseline: fBaseline },
        threshold,
      ),
      await onnxScorer(
        "featurewise_ocsvm_linear",
        "linear, trained on the foreign plant",
        trained.featurewise_ocsvm_linear!,
        fShape,
        threshold,
      ),
      ...baselineScorers(fSeries, fLinear!, fTarget, W),
    ];
    const fResult = await runSuite(fScorers, {
      ...settings,
      plantSeed,
      nFeatures: foreignFeatures,
    });
    foreign = {
      plant_seed: plantSeed,
      n_features: foreignFeatures,
      training_frames: 3000,
      models: summarise(fResult),
      operating_points: operatingPoints(fResult),
    };
  }

  log(`[eval] fault kind: ${eventsPerKind} events per kind`);
  const faultKinds = runFaultKindEval({
    meta: main.meta,
    onnx: main.bytes,
    eventsPerKind,
    seed: evalSeed,
  });
  const seconds = (performance.now() - t0) / 1000;
  const doc = {
    fault_kind: faultKinds,
    settings: {
      n_features: F,
      window_size: W,
      threshold,
      p_target: pTarget,
      clean_frames: cleanFrames,
      events_per_kind: eventsPerKind,
      concurrent_events: 10,
      eval_seed: evalSeed,
      training_seed: trainSeed,
      plant_seed: data.plant_seed,
    },
    seconds: Math.round(seconds),
    models: summary,
    operating_points: points,
    incidents: { settings: incidentConfig, featurewise_ocsvm: incidents },
    foreign_plant: foreign,
  };
  console.log(
    `Simulated plant: ${F} features, ${cleanFrames} clean frames, ${eventsPerKind} events per kind, threshold ${threshold}`,
  );
  console.log(markdownTable(summary));
  console.log("\nEvery other scorer re-thresholded to the default model's operating point:");
  console.log(operatingPointsTable(points, summary, "featurewise_ocsvm"));
  console.log(
    "\nIncidents of the default model (the engine's tracker, one window at a time; each segment one stream; an episode = the events injected together in one slot; delays in frames):\n",
  );
  console.log(
    incidentTable(Object.entries(incidents).map(([name, m]) => ({ name, m }))).join("\n"),
  );
  if (foreign) {
    console.log(
      `\nForeign plant (seed 4242, ${foreignFeatures} features, models trained on its own 3000 frames):`,
    );
    console.log(markdownTable(foreign.models as Record<string, unknown>));
    console.log(
      operatingPointsTable(
        foreign.operating_points as Record<string, unknown>,
        foreign.models as Record<string, unknown>,
        "featurewise_ocsvm",
      ),
    );
  }
  console.log("\nFault kind of incidents on injected events (sensor vs process):\n");
  console.log(faultKindTable(faultKinds));
  return doc;
}

main(cli.parsed.values).catch((err: unknown) => {
  // Data, models or settings that cannot be used (the arguments were fine): the message, exit 1.
  const known =
    err instanceof DatasetError || err instanceof ConfigError || err instanceof InputError;
  console.error(`eval: ${known ? (err as Error).message : (err as Error).stack}`);
  process.exit(1);
});
