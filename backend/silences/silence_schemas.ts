// Valibot schemas for the silences API: the body that creates one, the one that expires it, list queries.
import * as v from "valibot";
import { HttpError } from "../../contracts/error.ts";
import { recurrenceSchema, SILENCE_STATES } from "../../contracts/silence.ts";
import { matchersCoverEverything } from "../../contracts/silence_match.ts";
import { operatorText, storableInstant, storableText } from "../../contracts/storable.ts";
import { parseBody } from "../_parse_body.ts";
import { intParam } from "../alerts/_query_params.ts";

/** The farthest ahead a silence may end (a recurring one included): 90 days. */
export const MAX_SILENCE_AHEAD_MS = 90 * 86_400_000;

const text = operatorText;

// ISO 8601 with a zone: a bare local time would mean whatever the server's zone is.
const instant = v.pipe(
  v.string("an ISO 8601 time with a zone"),
  v.regex(
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i,
    "an ISO 8601 time with a zone, e.g. 2026-11-24T09:00:00Z",
  ),
  // Date.parse rolls 2026-02-30 over into March; a day that does not exist is refused.
  v.check((s) => {
    const [y, m, d] = s.slice(0, 10).split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d && m >= 1 && m <= 12;
  }, "an ISO 8601 time with a zone, on a day that exists"),
  v.transform((s) => new Date(s)),
  v.check((d) => !Number.isNaN(d.getTime()), "an ISO 8601 time with a zone"),
  storableInstant,
);

/** A stream glob: stream-id characters plus `*` and `?`. */
const streamGlob = v.pipe(
  v.string("a stream glob"),
  v.regex(/^[A-Za-z0-9._:*?-]{1,128}$/, "a glob of 1..128 characters of A-Z a-z 0-9 . _ : - * ?"),
);

/** A sensor-name glob: any printable text (`\` escapes `*`, `?` and itself). */
const sensorGlob = v.pipe(
  v.string("a sensor glob"),
  v.regex(/^[^\p{Cc}]{1,500}$/u, "a glob of 1..500 printable characters"),
  storableText,
);

/** `POST /api/v1/silences`. */
export const newSilenceSchema = v.strictObject(
  {
    matchers: v.strictObject(
      {
        stream: streamGlob,
        sensors: v.optional(
          v.pipe(
            v.array(sensorGlob, "a list of sensor globs"),
            v.maxLength(1000, "at most 1000 globs"),
          ),
          [],
        ),
      },
      "an object with 'stream' (and optionally 'sensors')",
    ),
    starts_at: v.optional(instant),
    ends_at: instant,
    recurrence: v.optional(v.nullable(recurrenceSchema)),
    reason: text("a reason", 500),
    created_by: text("a name", 200),
    confirm_all: v.optional(v.boolean("true or false")),
  },
  "a JSON object: the body",
);

export type NewSilence = Omit<v.InferOutput<typeof newSilenceSchema>, "starts_at"> & {
  starts_at: Date;
};

/** `DELETE /api/v1/silences/:id`: who expires it, and why. */
export const expireSilenceSchema = v.strictObject(
  {
    by: text("a name", 200),
    reason: v.optional(
      v.pipe(v.string("text"), v.trim(), v.maxLength(500, "at most 500 characters"), storableText),
    ),
  },
  "a JSON object (or ?by=&reason=) saying who expires it",
);

export const silenceListSchema = v.object({
  state: v.optional(v.picklist(SILENCE_STATES, `one of ${SILENCE_STATES.join(", ")}`)),
  limit: v.optional(intParam(1, 500), "100"),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(200))),
});

const refuse = (field: string, message: string) =>
  new HttpError(400, "invalid_request", `'${field}' must be ${message}`);

/**
 * Validates a new silence against the schema and the clock: it ends after it starts, in the
 * future, at most 90 days ahead; it starts at most 90 days back; matchers that cover every
 * sensor of every stream need `confirm_all: true`. Throws 400 `invalid_request` naming the field.
 * A `starts_at` in the past is kept as asked: silences are matched at frame time, and frames may
 * come late (a backfill, an outbox draining, a plant clock behind ours), so a silence for a
 * stretch already begun covers the frames of it that arrive from now on; alerts already stored
 * are not marked again (marking happens when an alert is stored).
 */
export function parseNewSilence(input: unknown, now: number): NewSilence {
  const body = parseBody(newSilenceSchema, input, "a silence");
  const starts = body.starts_at ?? new Date(now);
  if (now - starts.getTime() > MAX_SILENCE_AHEAD_MS) {
    throw refuse("starts_at", "at most 90 days back");
  }
  if (body.ends_at.getTime() <= now) throw refuse("ends_at", "in the future");
  if (body.ends_at.getTime() <= starts.getTime()) throw refuse("ends_at", "after 'starts_at'");
  if (body.ends_at.getTime() - now > MAX_SILENCE_AHEAD_MS) {
    throw refuse("ends_at", "at most 90 days ahead");
  }
  if (matchersCoverEverything(body.matchers) && body.confirm_all !== true) {
    throw refuse(
      "confirm_all",
      "true: these matchers silence every sensor of every stream (say so to mean it)",
    );
  }
  return { ...body, starts_at: starts };
}
