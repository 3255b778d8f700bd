// The alert contract (SPEC §4.2): engine → backend `POST /api/v1/alert`.
import * as v from "valibot";
import { STREAM_ID_PATTERN } from "./frame.ts";

const isoTimestamp = v.pipe(
  v.string(),
  v.check((s) => !Number.isNaN(Date.parse(s)), "an ISO 8601 timestamp"),
  v.isoTimestamp("an ISO 8601 timestamp with a zone"),
);
const score = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1));
const featureIdx = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10_000_000));

/** One anomalous feature as the original main server knows it; `feature` (the name) is ours. */
export const anomalousFeatureInputSchema = v.object({
  feature_idx: featureIdx,
  score,
  feature: v.optional(v.pipe(v.string(), v.maxLength(256))),
});

/** What the original engine sent: every field the main server required then. */
const originalEntries = {
  timestamp: isoTimestamp,
  anomaly_detected: v.boolean(),
  num_anomalous_features: v.pipe(v.number(), v.integer(), v.minValue(0)),
  anomalous_features: v.pipe(v.array(anomalousFeatureInputSchema), v.maxLength(100_000)),
};

/** Our additions; optional on input so alerts from the original design's engine are accepted. */
const ourEntries = {
  alert_id: v.pipe(v.string(), v.uuid("a UUID")),
  stream_id: v.pipe(v.string(), v.regex(STREAM_ID_PATTERN)),
  frame_timestamp: isoTimestamp,
  max_score: score,
  threshold: score,
  model_version: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  latency_ms: v.pipe(v.number(), v.finite(), v.minValue(0)),
};

/** `num_anomalous_features` is the full count; the list may be capped, never longer. */
function countCoversList<
  T extends { num_anomalous_features: number; anomalous_features: unknown[] },
>() {
  return v.check<T, string>(
    (a) => a.num_anomalous_features >= a.anomalous_features.length,
    "num_anomalous_features must be at least the length of anomalous_features",
  );
}

/**
 * What the backend accepts: the original fields required, ours optional. Unknown fields are
 * ignored (an upstream may add some); the stored alert keeps only known fields.
 */
export const alertInputSchema = v.pipe(
  v.object({
    ...originalEntries,
    alert_id: v.optional(ourEntries.alert_id),
    stream_id: v.optional(ourEntries.stream_id),
    frame_timestamp: v.optional(ourEntries.frame_timestamp),
    max_score: v.optional(ourEntries.max_score),
    threshold: v.optional(ourEntries.threshold),
    model_version: v.optional(ourEntries.model_version),
    latency_ms: v.optional(ourEntries.latency_ms),
  }),
  countCoversList(),
);

/** What our engine sends: every field required, each listed feature named. */
export const alertSchema = v.pipe(
  v.object({
    ...originalEntries,
    ...ourEntries,
    anomalous_features: v.pipe(
      v.array(
        v.object({ feature_idx: featureIdx, score, feature: v.pipe(v.string(), v.maxLength(256)) }),
      ),
      v.maxLength(100_000),
    ),
  }),
  countCoversList(),
);

export type AlertInput = v.InferOutput<typeof alertInputSchema>;
export type Alert = v.InferOutput<typeof alertSchema>;
export type AnomalousFeature = Alert["anomalous_features"][number];

/** The backend's answer to an accepted (or already stored) alert. */
export const alertAcceptedSchema = v.object({
  status: v.literal("ok"),
  alert_id: v.optional(v.string()),
});
