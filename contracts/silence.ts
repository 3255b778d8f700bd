// Maintenance silences as the backend serves them and the engine reads them: the wire shapes.
import * as v from "valibot";

/** Days of a weekly recurrence, Monday first, as three lower-case letters. */
export const SILENCE_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type SilenceDay = (typeof SILENCE_DAYS)[number];

/** Where a silence stands at a moment: not begun, running (its end not reached), over. */
export const SILENCE_STATES = ["active", "pending", "expired"] as const;
export type SilenceState = (typeof SILENCE_STATES)[number];

// An IANA name ("Europe/Berlin", "UTC"); the runtime's Intl data decides which exist.
const TZ_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

/** Whether the runtime knows the time zone `tz` by that IANA name. */
export function isTimeZone(tz: string): boolean {
  if (!TZ_NAME.test(tz) || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** "HH:MM" → minutes after midnight; "24:00" is the end of the day. */
export function minuteOfDay(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

const clock = (what: string, endOfDay: boolean) =>
  v.pipe(
    v.string(`a time ${what}`),
    v.regex(
      endOfDay ? /^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$/ : /^(?:[01]\d|2[0-3]):[0-5]\d$/,
      `a time ${what}`,
    ),
  );

/**
 * A weekly recurrence: the silence holds on `days` from `from` to `to` (wall clock in `tz`, the
 * end excluded), within its `starts_at`..`ends_at`. A window ends on the day it starts (`from`
 * before `to`; `to` may be "24:00"), so a night shift is two entries' worth of days: 22:00-24:00
 * and 00:00-06:00 the next day are two silences.
 */
export const recurrenceSchema = v.pipe(
  v.strictObject({
    days: v.pipe(
      v.array(
        v.pipe(
          v.string("a day"),
          v.transform((s) => s.toLowerCase()),
          v.picklist(SILENCE_DAYS, `one of ${SILENCE_DAYS.join(", ")}`),
        ),
        "a list of days",
      ),
      v.minLength(1, "at least one day"),
      v.maxLength(7, "at most 7 days"),
      v.check((d) => new Set(d).size === d.length, "days listed once each"),
      v.transform((d) => SILENCE_DAYS.filter((x) => d.includes(x))),
    ),
    from: clock("HH:MM (00:00..23:59)", false),
    to: clock("HH:MM (00:01..24:00)", true),
    tz: v.pipe(
      v.string("an IANA time zone"),
      v.check(isTimeZone, "an IANA time zone this runtime knows, e.g. Europe/Berlin"),
    ),
  }),
  v.forward(
    v.check(
      (r) => minuteOfDay(r.from) < minuteOfDay(r.to),
      "after 'from' on the same day (a window that crosses midnight is two silences)",
    ),
    ["to"],
  ),
);
export type Recurrence = v.InferOutput<typeof recurrenceSchema>;

const iso = v.pipe(v.string(), v.isoTimestamp());

/** One silence as the API answers it. Nothing is ever erased: expiring sets `expired_*`. */
export const silenceSchema = v.object({
  silence_id: v.pipe(v.string(), v.uuid()),
  matchers: v.object({
    /** A glob on `stream_id`: `*` any run of characters, `?` one, `\` escapes. */
    stream: v.string(),
    /** Globs on sensor (feature) names; empty: every sensor of the matching streams. */
    sensors: v.array(v.string()),
  }),
  starts_at: iso,
  ends_at: iso,
  // Read leniently: a zone this runtime does not know still parses (matching then treats the
  // silence as holding whenever it runs, the safe side for training).
  recurrence: v.nullable(
    v.object({
      days: v.array(v.picklist(SILENCE_DAYS)),
      from: v.string(),
      to: v.string(),
      tz: v.string(),
    }),
  ),
  reason: v.string(),
  created_by: v.string(),
  created_at: iso,
  expired_at: v.nullable(iso),
  expired_by: v.nullable(v.string()),
  expired_reason: v.nullable(v.string()),
  state: v.picklist(SILENCE_STATES),
});
export type Silence = v.InferOutput<typeof silenceSchema>;

/**
 * `GET /api/v1/silences/effective`: every silence not yet over (active and pending) plus those
 * that ended within the last day, so a reader that records with a delay still sees them. Served
 * with an ETag; the engine keeps the last one it read.
 */
export const silenceFeedSchema = v.object({
  as_of: iso,
  silences: v.array(silenceSchema),
});
export type SilenceFeed = v.InferOutput<typeof silenceFeedSchema>;
