// Turns one scored window into the SPEC §4.2 alert, or nothing when no feature crosses the threshold.
import type { Alert, AnomalousFeature } from "../../contracts/alert.ts";

export interface BuildAlertOptions {
  /** Scores of the whole batch, `[batch, n_features]` row-major. */
  scores: Float32Array;
  /** Row of this window in `scores`. */
  row: number;
  featureNames: readonly string[];
  /** A feature is anomalous when its score is at or above this. */
  threshold: number;
  /** Listed features at most; `num_anomalous_features` keeps the full count. */
  maxFeatures: number;
  alertId: string;
  streamId: string;
  /** Epoch milliseconds of the newest frame of the window. */
  frameTimestamp: number;
  modelVersion: string;
  /** Reception of the newest frame → inference complete. */
  latencyMs: number;
  /** Epoch milliseconds now. */
  now: number;
}

// Scores are float32 (about 7 significant digits): six decimals print them faithfully and keep
// a float32 0.9 reading as 0.9. The contract wants [0, 1].
const cleanScore = (x: number) => (x >= 1 ? 1 : x <= 0 ? 0 : Math.round(x * 1e6) / 1e6);

/**
 * Builds the alert for row `row` of a scored batch, listing anomalous features by descending
 * score (ties by index), capped at `maxFeatures`. Returns undefined when no score reaches the
 * threshold, which is the common case, so the scan allocates nothing then.
 *
 * @example
 * const alert = buildAlert({ scores, row: 0, featureNames, threshold: 0.9, maxFeatures: 1000, ... });
 */
export function buildAlert(options: BuildAlertOptions): Alert | undefined {
  const { scores, row, featureNames, threshold, maxFeatures } = options;
  const n = featureNames.length;
  const start = row * n;
  // Compare in float32, as the graph computed: a score of float32(0.9) meets a 0.9 threshold.
  const cut = Math.fround(threshold);
  let count = 0;
  for (let i = 0; i < n; i++) {
    // `>=` is false for NaN, so a broken score never raises an alert on its own.
    if (scores[start + i] >= cut) count++;
  }
  if (count === 0) return undefined;
  const hits: number[] = [];
  for (let i = 0; i < n; i++) if (scores[start + i] >= cut) hits.push(i);
  hits.sort((a, b) => scores[start + b] - scores[start + a] || a - b);
  const listed = hits.length > maxFeatures ? hits.slice(0, maxFeatures) : hits;
  const features: AnomalousFeature[] = listed.map((i) => ({
    feature_idx: i,
    score: cleanScore(scores[start + i]),
    feature: featureNames[i],
  }));
  return {
    timestamp: new Date(options.now).toISOString(),
    anomaly_detected: true,
    num_anomalous_features: hits.length,
    anomalous_features: features,
    alert_id: options.alertId,
    stream_id: options.streamId,
    frame_timestamp: new Date(options.frameTimestamp).toISOString(),
    max_score: features[0].score,
    threshold,
    model_version: options.modelVersion,
    latency_ms: Math.max(0, Math.round(options.latencyMs * 1000) / 1000),
  };
}
