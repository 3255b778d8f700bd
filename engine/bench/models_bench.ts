// `npm run bench -- --models 2 [--swap] [--flood]`: the engine serving two models, measured on its own.
import { writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { type FloodResult, floodTwoModels } from "./flood.ts";
import { makeBenchFrames } from "./frames.ts";
import type { LoadStream } from "./load.ts";
import { measureFloor, round } from "./micro.ts";
import { renderModelsReport } from "./models_report.ts";
import { type ModelsSwapResult, swapTwoModels } from "./swap_models.ts";
import { startTwoModelEngine } from "./two_model_engine.ts";
import {
  BIG_MODEL,
  createTwoModelRegistry,
  SMALL_MODEL,
  SMALL_PREFIX,
} from "./two_model_registry.ts";

/** The second model's size: a line's worth of sensors beside the plant-wide 25,000. */
const SMALL_FEATURES = 2000;
/** Enough frames to fit and calibrate it (inference cost depends on its features, not on these). */
const SMALL_TRAIN_FRAMES = 1000;
const FORM = { "content-type": "application/x-www-form-urlencoded" };
const log = (line: string) => console.error(line);

/**
 * Trains the small model (two versions when swapping), then for each measurement asked for
 * starts a fresh engine on the registry: the swap under 100 frames/s (half to each model, three
 * phases of 10 s, 5 with `quick`), and the flood (the small model at 10 frames/s alone, beside
 * the big model's binary streams sent as fast as they are taken, alone again: 30 s each, 10
 * with `quick`). Prints the table; writes the result to `json` when given.
 */
export async function runTwoModelBench(options: {
  quick: boolean;
  swap: boolean;
  flood: boolean;
  env: Record<string, string>;
  json?: string;
}) {
  const { quick, env } = options;
  const loadBefore = loadavg().map((x) => round(x, 2));
  log(`building ${BIG_MODEL} (25,000) and ${SMALL_MODEL} (${SMALL_FEATURES}) frames...`);
  const big = makeBenchFrames({ nFeatures: 25_000, count: 64, streams: 2 });
  const small = makeBenchFrames({
    nFeatures: SMALL_FEATURES,
    count: 64,
    streams: 2,
    streamPrefix: SMALL_PREFIX,
  });
  const floor = measureFloor(big, quick ? 1 : 4);
  const json = (frames: Uint8Array[][]): LoadStream[] =>
    frames.map((bodies) => ({ bodies, headers: FORM }));
  const flood: LoadStream[] = Array.from({ length: 8 }, (_, k) => ({
    bodies: big.binary,
    headers: { "content-type": "application/octet-stream", "x-stream-id": `bench-${k}` },
  }));

  log(`training ${SMALL_MODEL} (${options.swap ? 2 : 1} version(s)) with the training CLI...`);
  const t0 = performance.now();
  const registry = await createTwoModelRegistry({
    features: SMALL_FEATURES,
    trainFrames: SMALL_TRAIN_FRAMES,
    versions: options.swap ? 2 : 1,
  });
  const trainS = round((performance.now() - t0) / 1000, 1);
  let swap: ModelsSwapResult | undefined;
  let flooded: FloodResult | undefined;
  try {
    if (options.swap) {
      const seconds = quick ? 5 : 10;
      log(`two models, ${SMALL_MODEL} activated under 100 frames/s, 3 phases of ${seconds} s...`);
      const two = await startTwoModelEngine(registry.dir, env);
      try {
        swap = await swapTwoModels(
          two,
          { [BIG_MODEL]: json(big.gzipJsonByStream), [SMALL_MODEL]: json(small.gzipJsonByStream) },
          { rate: 100, seconds, versions: registry.versions },
        );
      } finally {
        await two.stop();
      }
    }
    if (options.flood) {
      const seconds = quick ? 10 : 30;
      log(
        `two models, ${BIG_MODEL} flooded, ${SMALL_MODEL} at 10 frames/s, 3 phases of ${seconds} s...`,
      );
      const two = await startTwoModelEngine(registry.dir, env);
      try {
        flooded = await floodTwoModels(
          two,
          { steady: json(small.gzipJsonByStream), flood },
          { rate: 10, seconds },
        );
      } finally {
        await two.stop();
      }
    }
  } finally {
    await registry.remove();
  }
  const result = {
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      cores: availableParallelism(),
      memory_gib: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      load_average_before: loadBefore,
      load_average_after: loadavg().map((x) => round(x, 2)),
    },
    config: { quick, env, small_features: SMALL_FEATURES, small_train_frames: SMALL_TRAIN_FRAMES },
    floor,
    train_s: trainS,
    ...(swap ? { swap } : {}),
    ...(flooded ? { flood: flooded } : {}),
  };
  console.log(renderModelsReport(result));
  if (options.json) {
    await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${options.json}`);
  }
  return result;
}
