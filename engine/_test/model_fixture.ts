// Trains small models with the real training CLI for tests, on a CSV with named columns.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ModelFixture {
  dir: string;
  name: string;
  featureNames: string[];
  /** A frame like the training data: each feature around its own level, small noise. */
  normalFrame(step: number): Float32Array;
  /** A normal frame with `count` features pushed far out (a spike the model must flag). */
  spikedFrame(step: number, count: number): Float32Array;
  /** The features that trend through the history and on (the last `drifting`). */
  drifting: number[];
  remove(): Promise<void>;
}

const ROOT = new URL("../../", import.meta.url).pathname;

// Deterministic noise: tests must see the same data on every run.
function noise(step: number, feature: number): number {
  let x = Math.imul(step + 1, 0x9e3779b1) ^ Math.imul(feature + 7, 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d);
  x ^= x >>> 13;
  return ((x >>> 0) / 2 ** 32 - 0.5) * 0.2;
}

const level = (feature: number) => 10 + (feature % 17);
/** Per frame, how far a drifting feature climbs (its noise's sd is about 0.06). */
export const DRIFT_PER_FRAME = 0.02;

/**
 * Writes `frames` rows of `features` named columns (`sensor_<i>_<kind>`) to a CSV and trains
 * model `name` from it with `npm run train`'s CLI into a fresh temporary folder. The last
 * `drifting` features climb steadily through the history and go on climbing (a temperature
 * following the weather): the model follows them with a running level.
 */
export async function trainFixtureModel(options: {
  features: number;
  frames?: number;
  name?: string;
  drifting?: number;
  /** `--running "SENSOR>X"`: the model's running condition. */
  running?: string;
}): Promise<ModelFixture> {
  const { features, frames = 300, name = "fixture", drifting = 0 } = options;
  const dir = await mkdtemp(join(tmpdir(), "engine-model-"));
  const featureNames = Array.from(
    { length: features },
    (_, i) => `sensor_${i}_${["temp", "vib", "psi"][i % 3]}`,
  );
  const frame = (step: number) => {
    const row = new Float32Array(features);
    for (let f = 0; f < features; f++) row[f] = level(f) + noise(step, f);
    for (let f = features - drifting; f < features; f++) row[f] += DRIFT_PER_FRAME * step;
    return row;
  };
  const lines = [featureNames.join(",")];
  for (let t = 0; t < frames; t++) lines.push(Array.from(frame(t), (x) => x.toFixed(5)).join(","));
  const csv = join(dir, "normal.csv");
  await writeFile(csv, `${lines.join("\n")}\n`);
  const args = [
    "--import",
    "tsx",
    "models/train/cli.ts",
    "--input",
    csv,
    "--out",
    dir,
    "--model",
    name,
    "--flat",
    ...(options.running ? ["--running", options.running] : []),
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`training CLI exited ${code}: ${stderr}`));
    });
  });
  return {
    dir,
    name,
    featureNames,
    normalFrame: (step) => frame(frames + step),
    spikedFrame(step, count) {
      const row = frame(frames + step);
      for (let f = 0; f < count; f++) row[f] += 1000;
      return row;
    },
    drifting: Array.from({ length: drifting }, (_, i) => features - drifting + i),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
