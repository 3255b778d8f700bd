// "Ours" on real data: trained as `npm run train` trains, exported to ONNX, scored by the engine's model loader.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type ScoringModel } from "../../../engine/infer/mod.ts";
import { StreamFeatures, WindowShape } from "../../../scoring/window_features.ts";
import { createLogger } from "../../../telemetry/logger.ts";
import { TRAIN_DEFAULTS, type TrainOptions, trainFeaturewise } from "../../featurewise/train.ts";
import { buildArtifacts, writeArtifacts } from "../../train/artifacts.ts";
import { type AutoCandidate, chooseSetting } from "../../train/auto_setting.ts";
import type { Detector, FittedDetector, Matrix, RunScores, ScoredWindow } from "./detector.ts";

/** Options of the training, as `npm run train` passes them (a dataset flag may override any). */
export type OursTrainOptions = Omit<TrainOptions, "kind" | "onProgress">;

const quiet = createLogger({ service: "eval", level: "silent" });

/**
 * The default model, trained in-process with the same function and options `npm run train` uses
 * (`trainFeaturewise` + `buildArtifacts`), written as NAME.onnx + NAME.json and loaded by the
 * engine's `loadModel` (CPU, on the calling thread: the same session options, checks, warm-up and
 * runs of `windowsPerRun` windows). Windows are scored in stream order; a feature is flagged at
 * the metadata's default threshold compared in float32, as the engine's `rankFlagged` does.
 * A row alarms when any feature is flagged in the window ending at it; its ranking score is the
 * largest severity of the window when the model reports one, else the largest score.
 */
export function ours(options: OursTrainOptions = {}, name = "ours"): Detector {
  const flags = Object.entries(options).map(([k, v]) => `${k} ${v}`);
  return {
    name,
    description: `featurewise_ocsvm (svdd), trained in-process, the engine's loadModel, default threshold; ${flags.length > 0 ? `training options: ${flags.join(", ")}` : "default training options"}`,
    fit: (train, featureNames) => fitOurs(train, featureNames, options),
  };
}

/**
 * "Ours" as `npm run train -- --auto` trains: per training history, the window size and tail
 * margin are chosen by `chooseSetting` on that history alone; `chosen` lists the choices in
 * fitting order.
 */
export function oursAuto(name = "ours, auto"): Detector & { chosen: AutoCandidate[] } {
  const chosen: AutoCandidate[] = [];
  return {
    name,
    description:
      "featurewise_ocsvm (svdd) as `npm run train -- --auto` trains: window size and tail margin chosen per training history by the backtest (held-out stretch, injected anomalies)",
    chosen,
    async fit(train: Matrix, featureNames: readonly string[]): Promise<FittedDetector> {
      const values = Float32Array.from(train.values);
      const choice = await chooseSetting({ values, nFrames: train.rows, nFeatures: train.cols });
      chosen.push(choice.chosen);
      return fitOurs(train, featureNames, choice.chosen);
    },
  };
}

async function fitOurs(
  train: Matrix,
  featureNames: readonly string[],
  options: OursTrainOptions,
): Promise<FittedDetector> {
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
    await writeArtifacts(dir, onnx, meta);
    const model = await loadModel({
      dir,
      name: meta.name,
      device: "cpu",
      log: quiet,
      maxBatch: 8,
      thread: "main",
    });
    return fittedModel(model);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Scores runs with a model loaded by the engine. Each run is its own stream through the engine's
 * `StreamFeatures` (the scoring layer, as the engine's streams) from its first row (rows before `testStart` fill the first windows and, for a
 * model with running levels, move them), so windows are what the engine would score.
 */
export function fittedModel(model: ScoringModel): FittedDetector {
  const meta = model.metadata;
  const W = meta.window_size;
  const F = meta.n_features;
  const cut = Math.fround(meta.default_threshold);
  const per = model.windowsPerRun;
  const batch = new Float32Array(per * W * F);
  const baseline = meta.baseline;
  const nb = baseline?.features.length ?? 0;
  const rawBatch = new Float32Array(per * W * nb);
  const raw = new Float32Array(W * F);
  const scores = new Float32Array(per * F);
  const severity = model.outputs.severity ? new Float32Array(per * F) : undefined;
  const statistic = model.outputs.statistic ? new Int32Array(per * F) : undefined;
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
      const windows = new StreamFeatures(
        new WindowShape({ windowSize: W, frameSize: F, baseline }),
      );
      const frame = new Float32Array(F);
      const ends: number[] = [];
      const flush = async () => {
        const n = ends.length;
        await model.score(batch, n, scores, { severity, statistic });
        for (let b = 0; b < n; b++) {
          const row = ends[b];
          const s = scores.subarray(b * F, (b + 1) * F);
          const v = severity?.subarray(b * F, (b + 1) * F);
          let flagged = false;
          let rank = Number.NEGATIVE_INFINITY;
          for (let f = 0; f < F; f++) {
            if (s[f] >= cut) flagged = true;
            const r = v ? v[f] : s[f];
            if (r > rank) rank = r;
          }
          alarm[row - testStart] = flagged ? 1 : 0;
          score[row - testStart] = rank;
          if (visit) {
            // The readings as they arrived (the model saw the baseline sensors' deviations).
            raw.set(batch.subarray(b * W * F, (b + 1) * W * F));
            for (let t = 0; t < W; t++) {
              for (let i = 0; i < nb; i++) {
                raw[t * F + (baseline as { features: number[] }).features[i]] =
                  rawBatch[(b * W + t) * nb + i];
              }
            }
            visit({
              row,
              input: raw,
              scores: s,
              severity: v,
              statistic: statistic?.subarray(b * F, (b + 1) * F),
            });
          }
        }
        ends.length = 0;
      };
      for (let row = 0; row < run.rows; row++) {
        for (let f = 0; f < F; f++) frame[f] = run.values[row * F + f];
        const b = ends.length;
        const ready = windows.push(
          frame,
          batch.subarray(b * W * F, (b + 1) * W * F),
          rawBatch.subarray(b * W * nb, (b + 1) * W * nb),
        );
        // Windows end at every test row (earlier rows fill them).
        if (!ready || row < testStart) continue;
        ends.push(row);
        if (ends.length === per) await flush();
      }
      if (ends.length > 0) await flush();
      return { alarm, score };
    },
    close: () => model.close(),
  };
}
