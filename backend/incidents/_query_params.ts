// Valibot schemas for the incident API's query strings and acknowledgement and verdict bodies.
import * as v from "valibot";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { storableText } from "../../contracts/storable.ts";
import { intParam, timeParam } from "../alerts/_query_params.ts";
import { VERDICTS } from "./incident_types.ts";

export const incidentListSchema = v.object({
  state: v.optional(v.picklist(["open", "resolved"], "open or resolved")),
  acknowledged: v.optional(
    v.pipe(
      v.picklist(["true", "false"], "true or false"),
      v.transform((s) => s === "true"),
    ),
  ),
  verdict: v.optional(v.picklist([...VERDICTS, "none"], `one of ${VERDICTS.join(", ")}, none`)),
  stream_id: v.optional(v.pipe(v.string(), v.regex(STREAM_ID_PATTERN, "a stream id"))),
  feature_idx: v.optional(intParam(0, 10_000_000)),
  from: v.optional(timeParam),
  to: v.optional(timeParam),
  limit: v.optional(intParam(1, 500), "50"),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(200))),
  sensors: v.optional(intParam(0, 100), "5"),
});

export const heatmapSchema = v.object({
  from: v.optional(timeParam),
  to: v.optional(timeParam),
  buckets: v.optional(intParam(1, 200), "24"),
  sensors: v.optional(intParam(1, 100), "20"),
});

/** `POST /incidents/:id/ack`: who (required) and an optional note. */
export const ackBodySchema = v.strictObject({
  by: v.pipe(
    v.string("a name"),
    v.trim(),
    // 200, as for verdicts and silences: a signed-in person's name (up to 200) replaces it.
    v.minLength(1, "a name of 1..200 characters"),
    v.maxLength(200, "a name of 1..200 characters"),
    storableText,
  ),
  note: v.optional(
    v.pipe(v.string("text"), v.trim(), v.maxLength(2000, "at most 2000 characters"), storableText),
    "",
  ),
});

/** `POST /incidents/:id/verdict`: what (required), an optional cause and note, who (required). */
export const verdictBodySchema = v.strictObject({
  verdict: v.picklist(VERDICTS, `one of ${VERDICTS.join(", ")}`),
  cause: v.optional(
    v.pipe(v.string("text"), v.trim(), v.maxLength(500, "at most 500 characters"), storableText),
  ),
  note: v.optional(
    v.pipe(v.string("text"), v.trim(), v.maxLength(2000, "at most 2000 characters"), storableText),
  ),
  by: v.pipe(
    v.string("a name"),
    v.trim(),
    v.minLength(1, "a name of 1..200 characters"),
    v.maxLength(200, "a name of 1..200 characters"),
    storableText,
  ),
});
