// Writes a trained model as NAME.onnx + NAME.json (metadata checked against the contract).
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import type { TrainResult } from "../featurewise/train.ts";
import {
  exportOnnx,
  INPUT_NAME,
  OUTPUT_NAME,
  SEVERITY_NAME,
  STATISTIC_NAME,
} from "../onnx/export.ts";

/** Bumped when the training algorithm changes in a way that changes weights. */
export const MODEL_FORMAT_VERSION = "2.3.0";

export const SCORE_SEMANTICS =
  "Calibrated per-feature tail score: score = clip(0.9 * ln(p) / ln(p_target), 0, 1), where p is " +
  "the fitted probability (GPD tail on held-out normal windows) that a normal window of this " +
  "feature is at least this unusual, and p_target = alpha_frame / n_features. score >= 0.9 means " +
  "p <= p_target, so with every feature at 0.9 the expected false-alert rate is about alpha_frame " +
  "per frame; 1.0 means p <= p_target^(1/0.9). Output 'severity' is -log10(p) of the deciding " +
  "statistic (does not saturate; ranks anomalies), output 'statistic' its index in 'statistics'.";

export const BASELINE_DESCRIPTION =
  "Drifting sensors (drift index above drift_max in training) are judged against a running " +
  "level: per stream, before a frame joins a window, reading x_t of each listed feature becomes " +
  "x_t - b_t, b_t = sum_{j=1..m} w_j x_{t-j} / sum w_j, w_j = (1 - alpha)^(j-1), m = min(t, span) " +
  "(non-finite readings left out; a stream's first reading reads 0). The graph was fitted and " +
  "calibrated on the history transformed the same way.";

/** Builds the ONNX bytes and the metadata document of a trained model. */
export function buildArtifacts(
  name: string,
  result: TrainResult,
  featureNames: readonly string[],
  source: Record<string, unknown>,
  threshold = 0.9,
): { onnx: Uint8Array; meta: ModelMetadata } {
  const onnx = exportOnnx(result.params, `${name}: ${result.params.kind}`);
  const sha = createHash("sha256").update(onnx).digest("hex");
  const meta = parseModelMetadata({
    name,
    version: `${MODEL_FORMAT_VERSION}+${sha.slice(0, 12)}`,
    kind: result.params.kind,
    window_size: result.params.windowSize,
    n_features: result.params.nFeatures,
    feature_names: [...featureNames],
    input_name: INPUT_NAME,
    output_name: OUTPUT_NAME,
    severity_output_name: SEVERITY_NAME,
    statistic_output_name: STATISTIC_NAME,
    statistics: result.statistics,
    typical: result.typical,
    ...(result.baseline
      ? {
          baseline: {
            description: BASELINE_DESCRIPTION,
            alpha: result.baseline.alpha,
            span: result.baseline.span,
            features: [...result.baseline.features],
          },
        }
      : {}),
    score: { semantics: SCORE_SEMANTICS, calibration: result.calibration },
    default_threshold: threshold,
    training: { ...result.summary, data: source },
    onnx_sha256: sha,
  });
  return { onnx, meta };
}

/** Writes `DIR/NAME.onnx` and `DIR/NAME.json`; returns their paths. */
export async function writeArtifacts(
  dir: string,
  onnx: Uint8Array,
  meta: ModelMetadata,
): Promise<{ onnxPath: string; jsonPath: string }> {
  await mkdir(dir, { recursive: true });
  const onnxPath = join(dir, `${meta.name}.onnx`);
  const jsonPath = join(dir, `${meta.name}.json`);
  await writeFile(onnxPath, onnx);
  await writeFile(jsonPath, `${JSON.stringify(meta, null, 1)}\n`);
  return { onnxPath, jsonPath };
}
