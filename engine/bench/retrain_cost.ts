// `npm run bench -- --retrain`: what the training history and retraining cost the engine, measured on their own.
import { writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { engineConfigSchema, parseConfig } from "../../contracts/config.ts";
import { makeBenchFrames } from "./frames.ts";
import { historyHotPath } from "./history_hot_path.ts";
import { historySize } from "./history_size.ts";
import { measureFloor, round } from "./micro.ts";
import { renderRetrainReport } from "./retrain_report.ts";
import { retrainCost } from "./retrain_run.ts";

const log = (line: string) => console.error(line);

/**
 * 1. History on vs off, alternated (`pairs` of off, on): binary frames at saturation, then one
 *    stream at 2 frames/s. 2. The record size, projected onto a stream's day. 3. The retraining
 *    CLI on recorded clean frames beside the engine under a steady load. Prints the table;
 *    writes the result to `json` when given.
 */
export async function runRetrainBench(options: { quick: boolean; json?: string }) {
  const { quick } = options;
  const loadBefore = loadavg().map((x) => round(x, 2));
  const defaults = parseConfig(engineConfigSchema, {});
  log("building 25,000-feature frames...");
  const frames = makeBenchFrames({ nFeatures: 25_000, count: 64 });
  const floor = measureFloor(frames, quick ? 1 : 4);
  const hotPath = await historyHotPath(
    frames,
    {
      pairs: quick ? 2 : 3,
      connections: 8,
      saturationS: quick ? 5 : 15,
      rate: 2,
      lowRateS: quick ? 10 : 30,
    },
    log,
  );
  // The CLI needs 800 usable frames (600 to train on, 200 to judge): 900 leave a margin.
  const retrain = await retrainCost(
    { frames: quick ? 900 : 1500, rates: quick ? [1] : [1, 10], beforeS: quick ? 20 : 40 },
    log,
  );
  const floorAfter = measureFloor(frames, quick ? 1 : 4);
  const size = historySize({
    bytesPerFrame: retrain.recorded.bytes_per_frame,
    everyN: defaults.HISTORY_EVERY_N,
    runFrames: defaults.HISTORY_RUN_FRAMES,
    maxBytes: defaults.HISTORY_MAX_BYTES,
    rateHz: 1,
  });
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
    config: { quick, features: 25_000, queue_max_size: 100 },
    floor: { before: floor, after: floorAfter },
    hot_path: hotPath,
    history_size: size,
    retrain,
  };
  console.log(renderRetrainReport(result));
  if (options.json) {
    await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${options.json}`);
  }
  return result;
}
