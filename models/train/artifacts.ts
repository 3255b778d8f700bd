// Writes a trained model as NAME.onnx + NAME.json (metadata checked against the contract).
import { createHash } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { type ModelMetadata, parseModelMetadata } from "../../contracts/model.ts";
import type { RunningCondition } from "../../contracts/running_condition.ts";
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

/**
 * Metadata fields the version leaves out: the version itself, and the training record (how the
 * model was made: data source, hyper-parameters, `--auto`'s choice), which people read and the
 * engine does not. Every other field either is the graph (`onnx_sha256`) or changes how the engine
 * admits or scores frames (`feature_names` match frames by name, `running` skips stopped windows,
 * `baseline` transforms readings, `typical` and `statistics` go into alerts), so a change of any
 * of them must be a new version, not "already there".
 */
const NOT_IN_VERSION = new Set(["version", "training"]);

/**
 * JSON with object keys sorted at every level: the same document gives the same text whatever
 * order its fields were set in (a file read back, a field added after parsing).
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The version of a model: the format, then the first 12 hex digits of a sha256 over its graph's
 * sha256 and the metadata that is served with it (everything but {@link NOT_IN_VERSION}).
 * Deterministic: the same graph and served metadata give the same version, so writing it again
 * is a no-op, while the same graph with renamed sensors or another running condition is a new
 * version.
 *
 * @example modelVersion(meta); // "2.3.0+5d41402abc4b"
 */
export function modelVersion(meta: Omit<ModelMetadata, "version">): string {
  const served = Object.fromEntries(
    Object.entries(meta).filter(([key]) => !NOT_IN_VERSION.has(key)),
  );
  const digest = createHash("sha256").update(canonicalJson(served)).digest("hex");
  return `${MODEL_FORMAT_VERSION}+${digest.slice(0, 12)}`;
}

/**
 * Builds the ONNX bytes and the metadata document of a trained model. `running` (when the
 * machine runs) goes into the metadata here rather than after, so that the version covers it.
 */
export function buildArtifacts(
  name: string,
  result: TrainResult,
  featureNames: readonly string[],
  source: Record<string, unknown>,
  { threshold = 0.9, running }: { threshold?: number; running?: RunningCondition } = {},
): { onnx: Uint8Array; meta: ModelMetadata } {
  const onnx = exportOnnx(result.params, `${name}: ${result.params.kind}`);
  const sha = createHash("sha256").update(onnx).digest("hex");
  const meta = parseModelMetadata({
    name,
    // Replaced below, once the rest of the document is known.
    version: "pending",
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
    ...(running ? { running } : {}),
  });
  meta.version = modelVersion(meta);
  return { onnx, meta };
}

/**
 * Writes `data` to `path` and fsyncs it. The file is a temporary one beside its target, so its
 * name carries the process id: two runs writing into one folder never share one.
 */
async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `DIR/NAME.onnx` and `DIR/NAME.json`; returns their paths. Both go to temporary files in
 * `DIR` first and are renamed into place only once both are on disk, the metadata last: a run
 * that fails or is killed while writing (a full disk) leaves a model already there as it was,
 * which matters with `--overwrite` on the models the engine serves.
 */
export async function writeArtifacts(
  dir: string,
  onnx: Uint8Array,
  meta: ModelMetadata,
): Promise<{ onnxPath: string; jsonPath: string }> {
  await mkdir(dir, { recursive: true });
  const onnxPath = join(dir, `${meta.name}.onnx`);
  const jsonPath = join(dir, `${meta.name}.json`);
  const onnxTmp = join(dir, `.${meta.name}.onnx.${process.pid}.tmp`);
  const jsonTmp = join(dir, `.${meta.name}.json.${process.pid}.tmp`);
  try {
    await writeSynced(onnxTmp, onnx);
    await writeSynced(jsonTmp, `${JSON.stringify(meta, null, 1)}\n`);
    await rename(onnxTmp, onnxPath);
    await rename(jsonTmp, jsonPath);
  } catch (error) {
    // A failed run must not leave its temporary files behind to fill the folder.
    await rm(onnxTmp, { force: true }).catch(() => {});
    await rm(jsonTmp, { force: true }).catch(() => {});
    throw error;
  }
  // The renames themselves reach the disk with the folder's own fsync.
  const folder = await open(dir, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
  return { onnxPath, jsonPath };
}
