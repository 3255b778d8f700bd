// Deterministic alert ids for the scale-out worker: one window scored twice yields one alert id.
import { createHash } from "node:crypto";

/**
 * A UUID (version 5 layout, SHA-1) derived from stream, window end, model and model version, so
 * a window scored again by a new partition owner produces the same `alert_id` and is stored once
 * (the backend and the Standard Webhooks id deduplicate on it).
 *
 * @example windowAlertId("line-3", 1700000000000, "featurewise_ocsvm", "1.2.0")
 */
export function windowAlertId(
  streamId: string,
  windowEnd: number,
  modelName: string,
  modelVersion: string,
): string {
  const digest = createHash("sha1")
    .update(`anomaly-stream/window\0${streamId}\0${windowEnd}\0${modelName}\0${modelVersion}`)
    .digest();
  digest[6] = (digest[6] & 0x0f) | 0x50;
  digest[8] = (digest[8] & 0x3f) | 0x80;
  const hex = digest.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
