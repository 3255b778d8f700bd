// Turns a validated alert body into the row shape the repository stores, filling our defaults.
import { type AlertInput, existingDate } from "../../contracts/alert.ts";
import { HttpError } from "../../contracts/error.ts";
import type { NewAlert } from "./alert_repository.ts";

/**
 * An id for an alert that has none (the original design's engine sends none): a UUID (version 8,
 * "custom") made of the body's SHA-256, so a retried delivery of the same bytes is still stored
 * once.
 */
export async function derivedAlertId(rawBody: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(rawBody)),
  );
  const b = digest.subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// PostgreSQL and JavaScript dates agree on years 1..9999; outside that a valid ISO string could
// still fail in the database, which would be a 500 instead of a 422. A day past its month's end
// (February 30th) is refused, not rolled over as `new Date` would (the contract refuses it too).
function parseTime(text: string, field: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime()) || !existingDate(text)) {
    throw new HttpError(
      422,
      "invalid_alert",
      `${field}: ${text} is not a date and time that exists`,
    );
  }
  const year = date.getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) {
    throw new HttpError(422, "invalid_alert", `${field}: year must be 1..9999, got ${text}`);
  }
  return date;
}

/**
 * Fills the fields an original-style alert lacks: `stream_id` "default", `max_score` from the
 * listed scores, an id derived from the body. A feature listed twice is a 422: the list is a set.
 */
export async function toNewAlert(input: AlertInput, rawBody: string): Promise<NewAlert> {
  // Stored as a PostgreSQL integer; a larger count cannot be real (features are capped at 10M).
  if (input.num_anomalous_features > 2_147_483_647) {
    throw new HttpError(422, "invalid_alert", "num_anomalous_features is larger than any model");
  }
  const seen = new Set<number>();
  let maxListed = 0;
  for (const f of input.anomalous_features) {
    if (seen.has(f.feature_idx)) {
      throw new HttpError(422, "invalid_alert", `feature_idx ${f.feature_idx} is listed twice`);
    }
    seen.add(f.feature_idx);
    if (f.score > maxListed) maxListed = f.score;
  }
  // The contract's check, again for a caller that built its input without it.
  if (input.max_score !== undefined && input.max_score < maxListed) {
    throw new HttpError(
      422,
      "invalid_alert",
      `max_score: must be at least every listed feature's score (${maxListed} listed, max_score is ${input.max_score})`,
    );
  }
  const timestamp = parseTime(input.timestamp, "timestamp");
  const frameTimestamp = input.frame_timestamp
    ? parseTime(input.frame_timestamp, "frame_timestamp")
    : null;
  return {
    alert_id: (input.alert_id ?? (await derivedAlertId(rawBody))).toLowerCase(),
    stream_id: input.stream_id ?? "default",
    timestamp,
    frame_timestamp: frameTimestamp,
    anomaly_detected: input.anomaly_detected,
    num_anomalous_features: input.num_anomalous_features,
    max_score: input.max_score ?? maxListed,
    threshold: input.threshold ?? null,
    model_version: input.model_version ?? null,
    model_name: input.model_name ?? null,
    latency_ms: input.latency_ms ?? null,
    max_severity: input.max_severity ?? null,
    incident:
      input.incident_id && input.event && input.incident_started_at
        ? {
            incident_id: input.incident_id.toLowerCase(),
            event: input.event,
            incident_started_at: parseTime(input.incident_started_at, "incident_started_at"),
          }
        : null,
    kind: input.kind ?? null,
    // valibot keeps only the contract's keys, so a feature is stored exactly as validated.
    anomalous_features: input.anomalous_features,
  };
}
