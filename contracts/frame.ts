// The frame contract of `POST /data-enqueue` (SPEC §4.1), built from the model's feature names.
import * as v from "valibot";
import type { ErrorCode } from "./error.ts";

/** Stream ids name a sliding window; kept short and printable so they are safe in logs and keys. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const DEFAULT_STREAM_ID = "default";

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/;

/** The latest instant a timestamp may name: 9999-12-31T23:59:59.999Z. */
const MAX_TIMESTAMP_MS = 253402300799999;

/**
 * The smallest number a timestamp may be: 1e11 epoch milliseconds, 1973-03-03T09:46:40Z. A smaller
 * one is far likelier epoch seconds (Python's `int(time.time())`, 1.8e9 in 2026; seconds stay
 * below 1e11 until the year 5138) or a time since some start than a frame of 1970–1973: read as
 * milliseconds it would date its frame in January 1970, its stream's seconds 1 ms apart. ISO text
 * names its year, so it may still say 1970.
 */
export const MIN_TIMESTAMP_NUMBER = 100_000_000_000;

/**
 * Parses a frame timestamp: ISO 8601 with a zone, from 1970 to the end of year 9999, or whole
 * epoch milliseconds from {@link MIN_TIMESTAMP_NUMBER} (1973-03-03) to the end of year 9999. A
 * date or time that does not exist (February 30th, 24:00, 61 seconds) is refused rather than
 * rolled over. Returns epoch milliseconds, or `undefined` when the value is not a valid timestamp
 * ({@link timestampProblemMessage} says why).
 */
export function parseTimestamp(value: unknown): number | undefined {
  let ms: number;
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < MIN_TIMESTAMP_NUMBER) return undefined;
    ms = value;
  } else if (typeof value === "string") {
    const m = ISO_8601.exec(value);
    if (!m) return undefined;
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map((x) => Number(x ?? 0));
    const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
    if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return undefined;
    if (hour > 23 || minute > 59 || second > 59) return undefined;
    ms = Date.parse(value);
  } else return undefined;
  return ms >= 0 && ms <= MAX_TIMESTAMP_MS ? ms : undefined;
}

/**
 * The message of a timestamp `value` that {@link parseTimestamp} refused, sent as `key`
 * (`timestamp` in a JSON body, `X-Timestamp` for a binary frame). A number below
 * {@link MIN_TIMESTAMP_NUMBER} is most likely epoch seconds, and the message says so with the
 * milliseconds to send; any other value gets the contract's text.
 *
 * @example
 * timestampProblemMessage(1796627557);
 * // 'timestamp 1796627557 looks like epoch seconds (or a relative time): a number is read as
 * // epoch milliseconds, from 100000000000 (1973-03-03) on; send 1796627557000 if it is epoch
 * // seconds, or ISO 8601 with a zone'
 */
export function timestampProblemMessage(value: unknown, key = "timestamp"): string {
  if (typeof value !== "number" || !(value >= 0 && value < MIN_TIMESTAMP_NUMBER))
    return frameProblemMessage("frame_invalid_timestamp", [key], 1);
  const ms = Math.round(value * 1000);
  const send =
    ms >= MIN_TIMESTAMP_NUMBER
      ? `${ms} if it is epoch seconds, or ISO 8601 with a zone`
      : "epoch milliseconds or ISO 8601 with a zone";
  return `${key} ${value} looks like epoch seconds (or a relative time): a number is read as epoch milliseconds, from ${MIN_TIMESTAMP_NUMBER} (1973-03-03) on; send ${send}`;
}

const isPlainObject = (x: unknown) => x !== null && typeof x === "object" && !Array.isArray(x);

/** Largest finite float32. The model reads float32: a larger magnitude would reach it as Infinity. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** A feature value: a JSON number that is finite as a float32 (|x| <= FLOAT32_MAX). */
export const featureValueSchema = v.pipe(
  v.number("a finite number"),
  // The range implies finiteness (NaN is not a number to valibot), and gives one issue per value.
  v.minValue(-FLOAT32_MAX, "a finite float32"),
  v.maxValue(FLOAT32_MAX, "a finite float32"),
);

export const timestampSchema = v.pipe(
  v.union([v.number(), v.string()]),
  v.check((x) => parseTimestamp(x) !== undefined, "ISO 8601 with a zone or epoch milliseconds"),
  v.transform((x) => parseTimestamp(x) as number),
);

export const streamIdSchema = v.pipe(
  v.string(),
  v.regex(STREAM_ID_PATTERN, "1..128 characters of A-Z a-z 0-9 . _ : -"),
);

/**
 * The frame envelope for any feature set: what JSON Schema publishes. The engine validates
 * against {@link createFrameSchema}, which pins the exact feature names of the loaded model.
 */
export const frameEnvelopeSchema = v.strictObject({
  data: v.pipe(
    v.custom<object>(isPlainObject, "an object"),
    v.record(v.string(), featureValueSchema),
  ),
  timestamp: v.optional(timestampSchema),
  stream_id: v.optional(streamIdSchema),
});

/**
 * The exact frame contract for a model: every name present once, nothing else, finite numbers.
 *
 * @example
 * const schema = createFrameSchema(["feature_0", "feature_1"]);
 * v.parse(schema, { data: { feature_0: 1, feature_1: 2 } });
 */
export function createFrameSchema(featureNames: readonly string[]) {
  const entries: Record<string, typeof featureValueSchema> = Object.create(null);
  for (const name of featureNames) entries[name] = featureValueSchema;
  return v.strictObject({
    // valibot's object schemas accept arrays; a JSON array is never a frame's `data`.
    data: v.pipe(v.custom<object>(isPlainObject, "an object"), v.strictObject(entries)),
    timestamp: v.optional(timestampSchema),
    stream_id: v.optional(streamIdSchema),
  });
}

export type FrameSchema = ReturnType<typeof createFrameSchema>;
export type FrameInput = v.InferInput<typeof frameEnvelopeSchema>;
export type Frame = v.InferOutput<typeof frameEnvelopeSchema>;

/** The classified outcome of a rejected frame: one stable code, the first offending keys. */
export interface FrameProblem {
  code: ErrorCode;
  /** Offending feature keys or field names, in the order met, at most `limit`. */
  keys: string[];
  /** Total count of offending keys of that code (may exceed `keys.length`). */
  count: number;
  message: string;
}

/**
 * Order in which problems are reported when a frame has several. The hot-path scanner in the
 * engine follows the same order, so both paths answer the same code for the same body.
 */
export const FRAME_PROBLEM_ORDER: readonly ErrorCode[] = [
  "frame_invalid_shape",
  "frame_invalid_value",
  "frame_unknown_features",
  "frame_duplicate_features",
  "frame_missing_features",
  "frame_invalid_timestamp",
  "frame_invalid_stream_id",
];

const PROBLEM_TEXT: Partial<Record<ErrorCode, string>> = {
  frame_invalid_shape: "frame is not {data: {...}, timestamp?, stream_id?}",
  frame_invalid_value: "feature values must be finite JSON numbers",
  frame_unknown_features: "unknown features",
  frame_duplicate_features: "duplicated features",
  frame_missing_features: "missing features",
  frame_invalid_timestamp: "timestamp must be ISO 8601 with a zone or epoch milliseconds",
  frame_invalid_stream_id: "stream_id must be 1..128 characters of A-Z a-z 0-9 . _ : -",
};

/** Builds the human message for a problem: `missing features: feature_3, feature_9 (+12 more)`. */
export function frameProblemMessage(
  code: ErrorCode,
  keys: readonly string[],
  count: number,
): string {
  const text = PROBLEM_TEXT[code] ?? code;
  if (keys.length === 0) return text;
  const more = count > keys.length ? ` (+${count - keys.length} more)` : "";
  return `${text}: ${keys.map((k) => JSON.stringify(k)).join(", ")}${more}`;
}

/**
 * Classifies valibot issues of a frame into the single problem the API reports, naming at most
 * `limit` keys. valibot's strict object stops at the first unknown key; given the model's
 * `features`, the unknown ones are all counted and the first `limit` named, in the order
 * `for...in` lists the frame's `data`, as missing and invalid ones are.
 *
 * @example
 * const names = ["feature_0", "feature_1"];
 * const result = v.safeParse(createFrameSchema(names), { data: { feature_0: 1, x: 2, y: 3 } });
 * classifyFrameIssues(result.issues!, 5, new Set(names)).message;
 * // 'unknown features: "x", "y"'
 */
export function classifyFrameIssues(
  issues: readonly v.BaseIssue<unknown>[],
  limit = 5,
  features?: { has(key: string): boolean },
): FrameProblem {
  const found = new Map<ErrorCode, string[]>();
  // The refused timestamp: its message may say what it looks like.
  let timestamp: unknown;
  const add = (code: ErrorCode, key: string) => {
    const list = found.get(code);
    if (list) list.push(key);
    else found.set(code, [key]);
  };
  for (const issue of issues) {
    const path: readonly { key: unknown }[] = issue.path ?? [];
    const top = path[0]?.key;
    if (top === "data" && path.length >= 2) {
      const key = String(path[1].key);
      if (issue.type === "strict_object" && issue.received === "undefined") {
        add("frame_missing_features", key);
      } else if (issue.type === "strict_object") {
        const data = path[1] as { input?: unknown };
        if (features && isPlainObject(data.input)) {
          for (const name in data.input as object) {
            if (!features.has(name)) add("frame_unknown_features", name);
          }
        } else add("frame_unknown_features", key);
      } else add("frame_invalid_value", key);
    } else if (top === "timestamp" && path.length === 1) {
      add("frame_invalid_timestamp", "timestamp");
      timestamp = issue.input;
    } else if (top === "stream_id" && path.length === 1)
      add("frame_invalid_stream_id", "stream_id");
    else add("frame_invalid_shape", path.length ? String(top) : "(root)");
  }
  for (const code of FRAME_PROBLEM_ORDER) {
    const keys = found.get(code);
    if (keys) {
      const shown = keys.slice(0, limit);
      return {
        code,
        keys: shown,
        count: keys.length,
        message:
          code === "frame_invalid_timestamp"
            ? timestampProblemMessage(timestamp)
            : frameProblemMessage(code, shown, keys.length),
      };
    }
  }
  return {
    code: "frame_invalid_shape",
    keys: [],
    count: 0,
    message: PROBLEM_TEXT.frame_invalid_shape!,
  };
}
