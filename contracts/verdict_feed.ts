// The current operator verdict of every judged incident, as the backend serves it to the engine.
import * as v from "valibot";

/** What an operator judged an incident to be. */
export const INCIDENT_VERDICTS = [
  "true_positive",
  "false_positive",
  "maintenance",
  "sensor_fault",
] as const;
export type IncidentVerdict = (typeof INCIDENT_VERDICTS)[number];

/**
 * `GET /api/v1/verdicts`: one entry per incident that has a verdict, its current (latest) one,
 * served with an ETag. The engine's training history lets a `false_positive` incident back in.
 */
export const verdictFeedSchema = v.object({
  as_of: v.pipe(v.string(), v.isoTimestamp()),
  verdicts: v.array(
    v.object({
      incident_id: v.pipe(v.string(), v.uuid()),
      stream_id: v.string(),
      verdict: v.picklist(INCIDENT_VERDICTS),
      at: v.pipe(v.string(), v.isoTimestamp()),
    }),
  ),
});
export type VerdictFeed = v.InferOutput<typeof verdictFeedSchema>;
