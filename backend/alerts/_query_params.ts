// Valibot schemas for the query strings of the alert read endpoints.
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { storableInstant } from "../../contracts/storable.ts";

/** A whole-number query parameter within `min..max`. */
export function intParam(min: number, max: number) {
  return v.pipe(
    v.string(),
    v.regex(/^\d{1,9}$/, "a whole number"),
    v.transform(Number),
    v.minValue(min, `at least ${min}`),
    v.maxValue(max, `at most ${max}`),
  );
}

// ISO 8601 with a zone, or epoch milliseconds, like frame timestamps.
export const timeParam = v.pipe(
  v.string(),
  v.transform((s) => (/^\d{1,15}$/.test(s) ? new Date(Number(s)) : new Date(s))),
  v.check((d) => !Number.isNaN(d.getTime()), "an ISO 8601 time or epoch milliseconds"),
  storableInstant,
);

const scoreParam = v.pipe(
  v.string(),
  v.regex(/^\d+(\.\d+)?$/, "a number 0..1"),
  v.transform(Number),
  v.maxValue(1, "a number 0..1"),
);

const range = {
  from: v.optional(timeParam),
  to: v.optional(timeParam),
};

export const listQuerySchema = v.object({
  stream_id: v.optional(v.pipe(v.string(), v.regex(STREAM_ID_PATTERN, "a stream id"))),
  ...range,
  feature_idx: v.optional(intParam(0, 10_000_000)),
  min_score: v.optional(scoreParam),
  limit: v.optional(intParam(1, 1000), "50"),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(200))),
  features: v.optional(intParam(0, 1000), "10"),
});

export const summaryQuerySchema = v.object({
  ...range,
  top: v.optional(intParam(1, 1000), "10"),
});

/** Parses a query string object or answers 400 `invalid_request` naming the parameter. */
export function parseQuery<S extends v.GenericSchema>(
  schema: S,
  query: Record<string, string>,
): v.InferOutput<S> {
  const result = v.safeParse(schema, query);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const name = v.getDotPath(issue) ?? "query";
  throw new HttpError(400, "invalid_request", `'${name}' must be ${issue.message}`);
}
