// Loads NAME.onnx + NAME.json from MODEL_DIR, checks they agree, warms the session up.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { ExtraOutputs, RunNames } from "./_run_chunks.ts";
import { type Device, type ExecutionProvider, ModelLoadError } from "./execution_provider.ts";
import { openRunner } from "./session_runner.ts";

/** A loaded model: scores `[batch, window, features]` windows into `[batch, features]` scores. */
export interface ScoringModel {
  readonly metadata: ModelMetadata;
  readonly provider: ExecutionProvider;
  /**
   * Scores the first `batch` windows of `input` (`batch * window_size * n_features` values)
   * and writes `batch * n_features` scores to the start of `output`. One call at a time.
   */
  score(
    input: Float32Array,
    batch: number,
    output: Float32Array,
    extra?: ExtraOutputs,
  ): Promise<void>;
  /** Which optional outputs the graph has (per metadata): `extra` buffers are filled for them. */
  readonly outputs: { readonly severity: boolean; readonly statistic: boolean };
  /** Windows ONNX Runtime scores per run: callers gain nothing by passing more at once. */
  readonly windowsPerRun: number;
  close(): Promise<void>;
}

export interface LoadModelOptions {
  dir: string;
  name: string;
  device: Device;
  log: Logger;
  /** Largest batch that will be scored; the warm-up runs it once so the first real one is fast. */
  maxBatch: number;
  /** Where inference runs (default: a worker thread under Node, the calling thread under Deno). */
  thread?: "worker" | "main";
  /** CPU sessions side by side (`INFERENCE_SESSIONS`; 0 or undefined: automatic). */
  sessions?: number;
  /** The metadata, when the caller has read and checked it already (the registry does). */
  metadata?: ModelMetadata;
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
  const metadata = options.metadata ?? (await readMetadata(join(dir, `${name}.json`)));
  const onnxPath = join(dir, `${name}.onnx`);
  const session = await openRunner({
    path: onnxPath,
    device,
    log,
    thread: options.thread,
    sessions: options.sessions,
  });
  const provider = session.provider;
  const {
    input_name: inputName,
    output_name: outputName,
    window_size: W,
    n_features: F,
  } = metadata;
  const shape = session.inputShapes[inputName];
  if (!shape || !session.outputNames.includes(outputName)) {
    await session.release();
    throw new ModelLoadError(
      `${onnxPath} has inputs [${session.inputNames}] and outputs [${session.outputNames}], ` +
        `metadata says ${inputName} -> ${outputName}`,
    );
  }
  if (shape[1] !== W || shape[2] !== F) {
    await session.release();
    throw new ModelLoadError(
      `${onnxPath} expects [${shape}] windows, metadata says [batch, ${W}, ${F}]`,
    );
  }

  const io: RunNames = { inputName, outputName };
  for (const [key, name] of [
    ["severityName", metadata.severity_output_name],
    ["statisticName", metadata.statistic_output_name],
  ] as const) {
    if (name === undefined) continue;
    if (!session.outputNames.includes(name)) {
      await session.release();
      throw new ModelLoadError(
        `${onnxPath} has outputs [${session.outputNames}], metadata names output ${name}`,
      );
    }
    io[key] = name;
  }
  function score(
    data: Float32Array,
    batch: number,
    output: Float32Array,
    extra?: ExtraOutputs,
  ): Promise<void> {
    // Scores land in the caller's preallocated buffer: no per-batch allocation.
    return session.run(io, [batch, W, F], data, output, extra);
  }

  // Warm-up: the first run of each shape allocates; do it now, not on the first frame.
  // Batches run WINDOWS_PER_RUN windows at a time per session, so that is the largest shape to
  // warm up; a batch of windowsPerRun warms every session.
  const warmBatch = Math.min(maxBatch, session.windowsPerRun);
  const warmIn = new Float32Array(warmBatch * W * F);
  const warmOut = new Float32Array(warmBatch * F);
  try {
    await score(warmIn, 1, warmOut);
    if (warmBatch > 1) await score(warmIn, warmBatch, warmOut);
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
    outputs: { severity: !!io.severityName, statistic: !!io.statisticName },
    windowsPerRun: session.windowsPerRun,
    close: () => session.release(),
  };
}
