// Chooses the ONNX Runtime execution provider for DEFAULT_DEVICE and opens the session on it.
import * as ort from "onnxruntime-node";
import type { Logger } from "../../telemetry/logger.ts";

export type Device = "auto" | "cuda" | "cpu";
export type ExecutionProvider = "cpu" | "cuda";

/** Raised when the model cannot be opened as asked; main turns it into a non-zero exit. */
export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}

const CUDA_HINT =
  "install the CUDA build of onnxruntime-node (ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci) on a host " +
  "with an NVIDIA driver and CUDA 12, or set DEFAULT_DEVICE=auto|cpu";

const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Opens an inference session for `device`: `cpu` on the CPU provider; `cuda` on CUDA only,
 * failing with a clear {@link ModelLoadError} when it is unavailable; `auto` tries CUDA and
 * falls back to CPU, logging why. Returns the session and the provider actually used.
 */
export async function openSession(
  path: string,
  device: Device,
  log: Logger,
  /** Intra-op threads of the CPU provider; undefined: ONNX Runtime's default (one per core). */
  threads?: number,
): Promise<{ session: ort.InferenceSession; provider: ExecutionProvider }> {
  // Native ORT prints its own copy of every failure to stderr; we report them in our JSON log.
  ort.env.logLevel = "fatal";
  const open = (provider: ExecutionProvider) =>
    ort.InferenceSession.create(path, {
      executionProviders: [provider],
      graphOptimizationLevel: "all",
      // A memory pattern is a pre-planned block per input shape; the batcher runs 1..8 windows,
      // so 8 of them. Without patterns, measured on the default model: the same speed and a peak
      // ~28 MB lower (170 -> 142 MB for a process holding the session).
      enableMemPattern: false,
      logSeverityLevel: 4,
      ...(threads ? { intraOpNumThreads: threads } : {}),
      // ONNX Runtime's pool threads spin between runs by default. On a small host they burn the
      // cores the event loop and the decode workers need: measured on 2 cores, turning spinning
      // off raised sustained ingest by ~40 % (binary 580 → 830 frames/s, gzip JSON 150 → 195).
      extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
    });
  if (device === "cuda" || device === "auto") {
    try {
      return { session: await open("cuda"), provider: "cuda" };
    } catch (error) {
      if (device === "cuda") {
        throw new ModelLoadError(
          `DEFAULT_DEVICE=cuda but the CUDA execution provider failed: ${reason(error)}; ${CUDA_HINT}`,
          { cause: error },
        );
      }
      log.info("CUDA execution provider unavailable, using CPU", { reason: reason(error) });
    }
  }
  try {
    return { session: await open("cpu"), provider: "cpu" };
  } catch (error) {
    throw new ModelLoadError(`cannot open ${path}: ${reason(error)}`, { cause: error });
  }
}
