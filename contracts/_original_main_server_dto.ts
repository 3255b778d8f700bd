// What the original design's main server (NestJS, class-validator) checks on `POST /api/v1/alert`, for tests.
import * as v from "valibot";

/**
 * The original main server's alert DTO: `timestamp` (`@IsISO8601`), `anomaly_detected`
 * (`@IsBoolean`), `num_anomalous_features` (`@IsInt`) and `anomalous_features` (`@IsArray`,
 * `@ValidateNested({ each: true })`, each `feature_idx` `@IsInt` and `score` `@IsNumber`), as the
 * public copy of its `AnomalyAlertDto` declares them. Slightly stricter here (indexes and counts
 * non-negative, scores 0..1, a timestamp with its zone), which our alerts always are, so a pass
 * here is a pass there.
 *
 * Unknown properties: the design's README names class-validator and class-transformer but not
 * the `ValidationPipe` options. Loose objects model the pipe's defaults (no `whitelist`, no
 * `forbidNonWhitelisted`), which SPEC §4.2 relies on ("a superset of what the existing main
 * server accepts"). Were it started with `forbidNonWhitelisted`, every alert of ours would be
 * refused with 400 for `alert_id` alone, long before `history` or `related`; with `whitelist`
 * alone, our fields would be dropped silently and the alert accepted.
 *
 * Kept apart from `alert.ts` on purpose, so a change to our schema cannot silently change this
 * check too.
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

/**
 * The largest JSON body the original main server reads: NestJS on Express parses JSON with
 * body-parser's default `limit` of 100 KiB (its README sets no other), and answers a larger body
 * `413 Payload Too Large` before any validation; the limit applies to the inflated body, so
 * compression would not help. An alert of ours with several sensors' histories can exceed it
 * (`EVIDENCE_ALERT_MAX_BYTES` is 512 KiB).
 */
export const ORIGINAL_MAIN_SERVER_BODY_LIMIT_BYTES = 100 * 1024;
