// A model registry for the two-model benchmark: the committed 25,000-feature model and a small one trained for the run.
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseModelMetadata } from "../../contracts/model.ts";
import { ModelRegistry } from "../infer/registry.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The committed default model (flat layout), served for unmatched streams. */
export const BIG_MODEL = "featurewise_ocsvm";
/** The model trained for the run; streams `line-b-*` go to it. */
export const SMALL_MODEL = "packaging";
export const SMALL_PREFIX = "line-b-";

export interface TwoModelRegistry {
  /** `MODEL_DIR` for the engine. */
  dir: string;
  /** The small model's versions, the active one first. */
  versions: string[];
  remove(): Promise<void>;
}

/** Trains the small model with `npm run train`'s CLI on the simulated plant, into `dir` (flat). */
async function trainSmall(
  dir: string,
  options: { features: number; frames: number; seed: number },
) {
  const args = [
    "--import",
    "tsx",
    "models/train/cli.ts",
    "--model",
    SMALL_MODEL,
    "--out",
    dir,
    "--features",
    String(options.features),
    "--frames",
    String(options.frames),
    "--seed",
    String(options.seed),
    "--flat",
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
  const path = join(dir, SMALL_MODEL);
  return {
    onnx: await readFile(`${path}.onnx`),
    meta: parseModelMetadata(JSON.parse(await readFile(`${path}.json`, "utf8"))),
  };
}

/**
 * A fresh registry holding the committed model (flat) and `versions` versions of a `features`-
 * feature model trained on the simulated plant from `trainFrames` frames (seeds 1, 2, ...: same
 * features and window, other weights; the first is active).
 */
export async function createTwoModelRegistry(options: {
  features: number;
  trainFrames: number;
  versions: number;
}): Promise<TwoModelRegistry> {
  const root = await mkdtemp(join(tmpdir(), "bench-two-models-"));
  const remove = () => rm(root, { recursive: true, force: true });
  try {
    const dir = join(root, "registry");
    await mkdir(dir);
    const source = new URL("../../models/", import.meta.url);
    for (const ext of [".onnx", ".json"]) {
      await copyFile(new URL(`${BIG_MODEL}${ext}`, source), join(dir, `${BIG_MODEL}${ext}`));
    }
    // Side by side (one core each), each into its own folder.
    const trained = await Promise.all(
      Array.from({ length: options.versions }, (_, v) =>
        trainSmall(join(root, `train-${v}`), {
          features: options.features,
          frames: options.trainFrames,
          seed: v + 1,
        }),
      ),
    );
    // The first written is activated (none was active yet), the others wait.
    const registry = new ModelRegistry(dir);
    for (const { onnx, meta } of trained) await registry.write(onnx, meta, { by: "bench" });
    return { dir, versions: trained.map(({ meta }) => meta.version), remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
