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

/**
 * A strict ISO 8601 date or date-time: `2026-11-24`, `2026-11-24T09:00`, `…T09:00:00.123`,
 * optionally with `Z` or an offset (`+01:00`, `+0100`). Nothing else: `new Date` would also take
 * `06/12/2026`, `foo 1` or a space for the `T`, and read them in the server's own time zone.
 */
const ISO_8601_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * A query string's time as an instant, or an invalid Date: whole epoch milliseconds (digits
 * only), or {@link ISO_8601_TIME} on a day and at a time that exist. Without a zone, a date-time
 * is read as UTC, as alert intake reads a zone-less `timestamp` (contracts/alert.ts), and a date
 * alone is its 00:00 UTC; never the server's local zone.
 *
 * @example parseTimeParam("2026-11-24T09:00") // 2026-11-24T09:00:00.000Z
 */
export function parseTimeParam(s: string): Date {
  if (/^\d{1,15}$/.test(s)) return new Date(Number(s));
  const m = ISO_8601_TIME.exec(s);
  if (!m) return new Date(Number.NaN);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((x) => Number(x ?? 0));
  // Date.parse rolls 2026-02-30 over into March and 24:00 into the next day: refused instead.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return new Date(Number.NaN);
  if (hour > 23 || minute > 59 || second > 59) return new Date(Number.NaN);
  const zoned = m[4] === undefined ? `${s}T00:00Z` : m[7] === undefined ? `${s}Z` : s;
  return new Date(Date.parse(zoned));
}

/** `from`, `to`, `since`: see {@link parseTimeParam}; anything else is a 400 naming it. */
export const timeParam = v.pipe(
  v.string(),
  v.transform(parseTimeParam),
  v.check(
    (d) => !Number.isNaN(d.getTime()),
    "epoch milliseconds or an ISO 8601 date or time (UTC unless it names a zone)",
  ),
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
