// What the original design's main server (NestJS, class-validator) checks on `POST /api/v1/alert`, for tests.
import * as v from "valibot";

/**
 * The original main server's alert DTO as its design describes it: the four fields its engine
 * sent, each validated by type, with the anomalous features' `feature_idx` and `score`. Its
 * validation pipe does not forbid unknown properties, so every field of ours passes as long as
 * none of these four changes name or type: loose objects model exactly that. Kept apart from
 * `alert.ts` on purpose, so a change to our schema cannot silently change this check too.
 */
export const originalMainServerAlertDto = v.looseObject({
  timestamp: v.pipe(v.string(), v.isoTimestamp()),
  anomaly_detected: v.boolean(),
  num_anomalous_features: v.pipe(v.number(), v.integer(), v.minValue(0)),
  anomalous_features: v.array(
    v.looseObject({
      feature_idx: v.pipe(v.number(), v.integer(), v.minValue(0)),
      score: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
    }),
  ),
});
