// Loads NAME.onnx + NAME.json from MODEL_DIR, checks they agree, warms the session up.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import type { Logger } from "../../telemetry/logger.ts";
import {
  type Device,
  type ExecutionProvider,
  ModelLoadError,
  openSession,
} from "./execution_provider.ts";

/** A loaded model: scores `[batch, window, features]` windows into `[batch, features]` scores. */
export interface ScoringModel {
  readonly metadata: ModelMetadata;
  readonly provider: ExecutionProvider;
  /**
   * Scores the first `batch` windows of `input` (`batch * window_size * n_features` values)
   * and writes `batch * n_features` scores to the start of `output`. One call at a time.
   */
  score(input: Float32Array, batch: number, output: Float32Array): Promise<void>;
  close(): Promise<void>;
}

export interface LoadModelOptions {
  dir: string;
  name: string;
  device: Device;
  log: Logger;
  /** Largest batch that will be scored; the warm-up runs it once so the first real one is fast. */
  maxBatch: number;
}

async function readMetadata(path: string): Promise<ModelMetadata> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ModelLoadError(`cannot read model metadata ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    return parseModelMetadata(JSON.parse(text));
  } catch (error) {
    throw new ModelLoadError(`invalid model metadata ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Loads and warms up the model named `name` in `dir`. Throws {@link ModelLoadError} with a
 * message fit for an operator when a file is missing, the metadata is invalid, the graph's
 * input/output do not match the metadata, or the requested device is unavailable.
 *
 * @example
 * const model = await loadModel({ dir: "models", name: "featurewise_ocsvm", device: "auto", log, maxBatch: 64 });
 */
export async function loadModel(options: LoadModelOptions): Promise<ScoringModel> {
  const { dir, name, device, log, maxBatch } = options;
  const metadata = await readMetadata(join(dir, `${name}.json`));
  const onnxPath = join(dir, `${name}.onnx`);
  const { session, provider } = await openSession(onnxPath, device, log);
  const {
    input_name: inputName,
    output_name: outputName,
    window_size: W,
    n_features: F,
  } = metadata;
  const input = session.inputMetadata.find((m) => m.name === inputName);
  if (!input || !session.outputNames.includes(outputName)) {
    await session.release();
    throw new ModelLoadError(
      `${onnxPath} has inputs [${session.inputNames}] and outputs [${session.outputNames}], ` +
        `metadata says ${inputName} -> ${outputName}`,
    );
  }
  if (input.isTensor && (input.shape[1] !== W || input.shape[2] !== F)) {
    await session.release();
    throw new ModelLoadError(
      `${onnxPath} expects [${input.shape}] windows, metadata says [batch, ${W}, ${F}]`,
    );
  }

  async function score(data: Float32Array, batch: number, output: Float32Array): Promise<void> {
    const feeds = {
      [inputName]: new ort.Tensor("float32", data.subarray(0, batch * W * F), [batch, W, F]),
    };
    // Scores land straight in the caller's preallocated buffer: no per-batch allocation.
    const fetches = {
      [outputName]: new ort.Tensor("float32", output.subarray(0, batch * F), [batch, F]),
    };
    await session.run(feeds, fetches);
  }

  // Warm-up: the first run of each shape allocates; do it now, not on the first frame.
  const warmIn = new Float32Array(maxBatch * W * F);
  const warmOut = new Float32Array(maxBatch * F);
  try {
    await score(warmIn, 1, warmOut);
    if (maxBatch > 1) await score(warmIn, maxBatch, warmOut);
  } catch (error) {
    await session.release();
    throw new ModelLoadError(
      `warm-up inference of ${onnxPath} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }

  return {
    metadata,
    provider,
    score,
    close: () => session.release(),
  };
}
