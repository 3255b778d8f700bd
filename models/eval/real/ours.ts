// "Ours" on real data: trained as `npm run train` trains, exported to ONNX, scored through the engine's session code.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { ModelMetadata } from "../../../contracts/model.ts";
import { WINDOWS_PER_RUN } from "../../../engine/infer/_run_chunks.ts";
import { openSession } from "../../../engine/infer/execution_provider.ts";
import { createLogger } from "../../../telemetry/logger.ts";
import { TRAIN_DEFAULTS, type TrainOptions, trainFeaturewise } from "../../featurewise/train.ts";
import { buildArtifacts, writeArtifacts } from "../../train/artifacts.ts";
import type { Detector, FittedDetector, Matrix, RunScores, ScoredWindow } from "./detector.ts";

/** Options of the training, as `npm run train` passes them (a dataset flag may override any). */
export type OursTrainOptions = Omit<TrainOptions, "kind" | "onProgress">;

const quiet = createLogger({ service: "eval", level: "silent" });

/**
 * The default model, trained in-process with the same function and options `npm run train` uses
 * (`trainFeaturewise` + `buildArtifacts`), written as NAME.onnx + NAME.json, opened with the
 * engine's `openSession` (CPU), windows scored in stream order, a feature flagged at the
 * metadata's default threshold compared in float32 as the engine's alert builder does.
 * A row alarms when any feature is flagged in the window ending at it; its ranking score is the
 * largest severity of the window when the model reports one, else the largest score.
 */
export function ours(options: OursTrainOptions = {}): Detector {
  return {
    name: "ours",
    description: "featurewise_ocsvm (svdd), trained in-process, ONNX Runtime, default threshold",
    async fit(train: Matrix, featureNames: readonly string[]): Promise<FittedDetector> {
      const values = Float32Array.from(train.values);
      const result = trainFeaturewise(
        { values, nFrames: train.rows, nFeatures: train.cols },
        { ...TRAIN_DEFAULTS, ...options, kind: "featurewise_ocsvm_svdd" },
      );
      const { onnx, meta } = buildArtifacts("featurewise_ocsvm", result, featureNames, {
        kind: "file",
        frames: train.rows,
        features: train.cols,
      });
      const dir = await mkdtemp(join(tmpdir(), "eval-model-"));
      try {
        const paths = await writeArtifacts(dir, onnx, meta);
        const { session } = await openSession(paths.onnxPath, "cpu", quiet);
        return fittedOnnx(session, meta);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Scores runs with an open session of a model described by `meta`. */
export function fittedOnnx(session: ort.InferenceSession, meta: ModelMetadata): FittedDetector {
  const W = meta.window_size;
  const F = meta.n_features;
  const cut = Math.fround(meta.default_threshold);
  const outputs = [meta.output_name, meta.severity_output_name, meta.statistic_output_name].filter(
    (n): n is string => n !== undefined && session.outputNames.includes(n),
  );
  return {
    metadata: meta,
    async scoreRun(
      run: Matrix,
      testStart: number,
      visit?: (w: ScoredWindow) => void,
    ): Promise<RunScores> {
      if (run.cols !== F) throw new RangeError(`run has ${run.cols} features, the model ${F}`);
      const rows = run.rows - testStart;
      const alarm = new Uint8Array(rows);
      const score = new Float64Array(rows).fill(Number.NEGATIVE_INFINITY);
      // Windows end at every row from the first full window on (earlier rows fill it).
      const first = Math.max(testStart, W - 1);
      const batch = new Float32Array(WINDOWS_PER_RUN * W * F);
      for (let end0 = first; end0 < run.rows; end0 += WINDOWS_PER_RUN) {
        const n = Math.min(WINDOWS_PER_RUN, run.rows - end0);
        for (let b = 0; b < n; b++) {
          const start = end0 + b - W + 1;
          for (let j = 0; j < W * F; j++) batch[b * W * F + j] = run.values[start * F + j];
        }
        const out = await session.run(
          { [meta.input_name]: new ort.Tensor("float32", batch.subarray(0, n * W * F), [n, W, F]) },
          outputs,
        );
        const sc = out[meta.output_name].data as Float32Array;
        const sev = meta.severity_output_name
          ? (out[meta.severity_output_name]?.data as Float32Array | undefined)
          : undefined;
        const statRaw = meta.statistic_output_name
          ? (out[meta.statistic_output_name]?.data as ArrayLike<number | bigint> | undefined)
          : undefined;
        // int64 comes back as BigInt64Array: the tracker wants plain numbers.
        const stat = statRaw ? Float64Array.from(statRaw as ArrayLike<number>, Number) : undefined;
        for (let b = 0; b < n; b++) {
          const row = end0 + b;
          const s = sc.subarray(b * F, (b + 1) * F);
          const v = sev?.subarray(b * F, (b + 1) * F);
          let flagged = false;
          let rank = Number.NEGATIVE_INFINITY;
          for (let f = 0; f < F; f++) {
            if (s[f] >= cut) flagged = true;
            const r = v ? v[f] : s[f];
            if (r > rank) rank = r;
          }
          alarm[row - testStart] = flagged ? 1 : 0;
          score[row - testStart] = rank;
          visit?.({
            row,
            input: batch.subarray(b * W * F, (b + 1) * W * F),
            scores: s,
            severity: v,
            statistic: stat?.subarray(b * F, (b + 1) * F),
          });
        }
      }
      return { alarm, score };
    },
    close: () => session.release(),
  };
}
