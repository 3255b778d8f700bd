// Scores backtest candidates with the engine's ONNX loader: for large sensor counts, where the plain-TypeScript reference scorer is slow.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ModelMetadata } from "../../contracts/model.ts";
import { type Device, loadModel, type ScoringModel } from "../../engine/infer/mod.ts";
import { createLogger } from "../../telemetry/logger.ts";
import { writeArtifacts } from "./artifacts.ts";

const quiet = createLogger({ service: "train", level: "silent" });

/**
 * A `load` for `chooseSetting`: writes the candidate to a temporary folder and loads it as the
 * engine does (the folder is removed once the session holds the graph).
 */
export function onnxLoader(device: Device = "cpu") {
  return async function loadCandidate(
    _result: unknown,
    meta: ModelMetadata,
    onnx: Uint8Array,
  ): Promise<ScoringModel> {
    const dir = await mkdtemp(join(tmpdir(), "auto-setting-"));
    try {
      await writeArtifacts(dir, onnx, meta);
      return await loadModel({
        dir,
        name: meta.name,
        device,
        log: quiet,
        maxBatch: 64,
        thread: "main",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}
