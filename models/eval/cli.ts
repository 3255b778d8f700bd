// `npm run eval`: detection quality of the committed models and two baselines on fresh labelled plant data.
import { readFile, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import type { FeaturewiseKind, LinearParams } from "../featurewise/params.ts";
import { trainFeaturewise } from "../featurewise/train.ts";
import { exportOnnx, INPUT_NAME, OUTPUT_NAME } from "../onnx/export.ts";
import { paramsFromOnnx } from "../reference/mod.ts";
import { plantSeries } from "../train/plant_series.ts";
import { markdownTable, operatingPoints, operatingPointsTable, summarise } from "./report.ts";
import { onnxScorer, type Scorer } from "./scorers.ts";
import { baselineScorers, runSuite } from "./suite.ts";

const USAGE = `usage: npm run eval -- [--models DIR] [--clean-frames N] [--events N] [--eval-seed N]
                         [--foreign-features N] [--json FILE]`;

const log = (line: string) => console.error(line);

async function loadModel(
  dir: string,
  name: string,
): Promise<{ meta: ModelMetadata; bytes: Uint8Array }> {
  const meta = parseModelMetadata(JSON.parse(await readFile(join(dir, `${name}.json`), "utf8")));
  return { meta, bytes: new Uint8Array(await readFile(join(dir, `${name}.onnx`))) };
}

function int(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`'--${name}' must be an integer >= ${min}, got '${raw}'`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    strict: true,
    options: {
      models: { type: "string" },
      "clean-frames": { type: "string" },
      events: { type: "string" },
      "eval-seed": { type: "string" },
      "foreign-features": { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (a.help) {
    console.log(USAGE);
    return;
  }
  const dir = a.models ?? "models";
  const cleanFrames = int("clean-frames", a["clean-frames"], 10_000, 1);
  const eventsPerKind = int("events", a.events, 100, 1);
  const evalSeed = int("eval-seed", a["eval-seed"], 1_000_000, 0);
  const foreignFeatures = int("foreign-features", a["foreign-features"], 2000, 0);
  const t0 = performance.now();

  // Main suite: the committed models on the plant they were trained on, fresh noise seeds.
  const main = await loadModel(dir, "featurewise_ocsvm");
  const lin = await loadModel(dir, "featurewise_ocsvm_linear");
  const data = main.meta.training.data as { plant_seed?: number; frames?: number };
  const trainSeed = main.meta.training.seed as number;
  if (data.plant_seed === undefined)
    throw new Error("the default model was not trained on the simulated plant");
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
      shape,
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
  const result = await runSuite(scorers, settings);
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
    for (const kind of ["featurewise_ocsvm_svdd", "featurewise_ocsvm_linear"] as const) {
      const r = trainFeaturewise(fSeries, { kind, seed: 7 });
      trained[kind] = exportOnnx(r.params);
      fTarget = (r.calibration as { p_target: number }).p_target;
      if (r.params.kind === "featurewise_ocsvm_linear") fLinear = r.params;
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
        fShape,
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

  const seconds = (performance.now() - t0) / 1000;
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
  };
  const doc = {
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
    machine,
    seconds: Math.round(seconds),
    models: summary,
    operating_points: points,
    foreign_plant: foreign,
  };
  console.log(
    `Evaluation: ${F} features, ${cleanFrames} clean frames, ${eventsPerKind} events per kind, threshold ${threshold}`,
  );
  console.log(markdownTable(summary));
  console.log("\nEvery other scorer re-thresholded to the default model's operating point:");
  console.log(operatingPointsTable(points, summary, "featurewise_ocsvm"));
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
  console.log(`\n${machine.cpu}, ${machine.cores} cores, ${machine.node}; ${seconds.toFixed(0)} s`);
  if (a.json) {
    await writeFile(a.json, `${JSON.stringify(doc, null, 2)}\n`);
    log(`[eval] wrote ${a.json}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`eval: ${(err as Error).message}`);
  console.error(USAGE);
  process.exit(1);
});
