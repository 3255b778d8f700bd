// What PostgreSQL can store: text without NUL or an unpaired surrogate, instants within years 1..9999.
import * as v from "valibot";

/** An unpaired UTF-16 surrogate: not a character, and not valid in PostgreSQL's text or JSON. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` can be stored as text and inside JSON as it is (PostgreSQL refuses NUL in both). */
export function isStorableText(s: string): boolean {
  return !s.includes("\0") && !LONE_SURROGATE.test(s);
}

/** A valibot check on a string: {@link isStorableText}. */
export const storableText = v.check<string, string>(
  isStorableText,
  "text without NUL characters or unpaired surrogates",
);

/**
 * A required text field of an operator's record: trimmed, 1..`max` characters, storable. `what`
 * names it in the refusal ("a reason of 1..500 characters").
 *
 * @example v.strictObject({ reason: operatorText("a reason", 500) })
 */
export const operatorText = (what: string, max: number) =>
  v.pipe(
    v.string(what),
    v.trim(),
    v.minLength(1, `${what} of 1..${max} characters`),
    v.maxLength(max, `${what} of 1..${max} characters`),
    storableText,
  );

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: what a timestamp column holds and ISO 8601 writes with four digits. */
export const MIN_INSTANT_MS = Date.parse("0001-01-01T00:00:00.000Z");
export const MAX_INSTANT_MS = Date.parse("9999-12-31T23:59:59.999Z");

/** True when `d` is a valid date within years 1..9999. */
export function isStorableInstant(d: Date): boolean {
  const t = d.getTime();
  return t >= MIN_INSTANT_MS && t <= MAX_INSTANT_MS;
}

/** A valibot check on a Date: {@link isStorableInstant}. */
export const storableInstant = v.check<Date, string>(
  isStorableInstant,
  "a time within the years 1 to 9999",
);
