// The alert contract (SPEC §4.2): engine → backend `POST /api/v1/alert`.
import * as v from "valibot";
import { FLOAT32_MAX, STREAM_ID_PATTERN } from "./frame.ts";
import { storableText } from "./storable.ts";

const DATE_PART = /^(\d{4})-(\d{2})-(\d{2})/;

/**
 * Whether the date at the start of an ISO 8601 `YYYY-MM-DD…` text exists in the (proleptic
 * Gregorian) calendar: its month 1..12 and its day within that month. `Date.parse` rolls a day past
 * its month's end over (`2026-02-30` reads as March 2nd) where `parseTimestamp` (frame.ts) refuses
 * it; valibot's `isoTimestamp` only bounds the day by 31 (and hours, minutes, seconds by 23, 59,
 * 59). Text without such a start is left to the format check: this judges the day alone.
 *
 * @example existingDate("2024-02-29T00:00:00Z") // true
 * @example existingDate("2026-11-31T10:00:00") // false
 */
export function existingDate(text: string): boolean {
  const m = DATE_PART.exec(text);
  if (!m) return true;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  return month >= 1 && month <= 12 && day >= 1 && day <= days;
}

const NO_SUCH_DATE =
  "an ISO 8601 timestamp of a day that exists (no February 30th, no November 31st)";

const isoTimestamp = v.pipe(
  v.string(),
  v.check((s) => !Number.isNaN(Date.parse(s)), "an ISO 8601 timestamp"),
  v.isoTimestamp("an ISO 8601 timestamp with a zone"),
  v.check(existingDate, NO_SUCH_DATE),
);
/**
 * An ISO 8601 date-time without a zone, as Python's `datetime.now().isoformat()` writes it (the
 * original design's engine): `2026-11-24T09:00:00` with up to 9 fraction digits.
 */
const ZONELESS_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?$/;

/**
 * The original `timestamp` as the original main server accepts it (`@IsISO8601`): with a zone,
 * or without one, which is read as UTC (written with its `Z`, so storing it does not depend on
 * the database session's time zone).
 */
const originalTimestamp = v.pipe(
  v.string(),
  v.transform((s) => (ZONELESS_DATE_TIME.test(s) ? `${s}Z` : s)),
  v.check((s) => !Number.isNaN(Date.parse(s)), "an ISO 8601 timestamp"),
  v.isoTimestamp("an ISO 8601 timestamp"),
  v.check(existingDate, NO_SUCH_DATE),
);
const score = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1));
/** A sensor's name: text PostgreSQL can store (its JSON refuses NUL and lone surrogates). */
const featureName = v.pipe(v.string(), v.maxLength(256), storableText);
const featureIdx = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10_000_000));

const finite = v.pipe(v.number(), v.finite());
const severity = v.pipe(v.number(), v.finite(), v.minValue(0));

/** Names a model may give the statistic that fired; `score` when the model reports none. */
export const STATISTIC_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;

/** The incident lifecycle events an alert can carry (`ALERT_MODE=incident`). */
export const INCIDENT_EVENTS = ["opened", "updated", "resolved"] as const;
export type IncidentEvent = (typeof INCIDENT_EVENTS)[number];

/**
 * What an incident looks like: `sensor` when its evidence looks like an instrument failing (a flat
 * line, a reading far outside training that no correlated sensor echoes), else `process`.
 */
export const FAULT_KINDS = ["process", "sensor"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * The evidence our engine attaches to each flagged sensor: the ranking severity (-log10 of the
 * fitted tail probability), the latest reading, the window of raw readings the model saw (oldest
 * first), the sensor's typical range in its own units, and which statistic fired.
 */
const evidenceEntries = {
  severity,
  value: finite,
  window: v.pipe(v.array(finite), v.maxLength(1024)),
  typical: v.object({ low: finite, high: finite }),
  statistic: v.pipe(v.string(), v.regex(STATISTIC_PATTERN)),
};

/** Smallest float32 magnitude above 0 (a subnormal): a nonzero magnitude below it is no float32. */
export const FLOAT32_MIN_MAGNITUDE = 2 ** -149;

/**
 * A number inside `history` or `related`: 0, or a float32's magnitude (subnormals included: a
 * sensor may read one, and the engine's readings and levels are float32). Both are stored as
 * jsonb, which keeps a number as an exact decimal and reads it back without an exponent: `1e308`
 * comes back as 309 digits (a 1.8 MB alert of them read back as 81 MB), `5e-324` as 325. Within
 * this range a number reads back in at most 63 characters.
 */
const contextNumber = v.pipe(
  v.number(),
  v.check(
    (x) => x === 0 || (Math.abs(x) >= FLOAT32_MIN_MAGNITUDE && Math.abs(x) <= FLOAT32_MAX),
    `a number 0 or of float32 magnitude (${FLOAT32_MIN_MAGNITUDE} to ${FLOAT32_MAX})`,
  ),
);

/** Most readings one sensor's `history` may carry: a day at 1 Hz (`EVIDENCE_HISTORY_FRAMES` ≤ this). */
export const HISTORY_MAX_VALUES = 86_400;
/** Most partners one sensor's `related` may list. */
export const RELATED_MAX = 16;

/**
 * A flagged sensor's raw readings before (and up to) the alert's frame, oldest first, so a page
 * can draw what led to the incident. Reading `i` was taken at `start + i * step_ms` when the frames
 * came at a steady step; when they did not, `timestamps` gives each reading's time and `step_ms`
 * is their median spacing. `onset` indexes the reading of the incident's first anomalous window.
 * For a sensor judged against a running level (model `baseline`), `level[i]` is the level reading
 * `i` was judged against, `null` where the kept history is too short to know it.
 */
export const historySchema = v.pipe(
  v.object({
    start: isoTimestamp,
    step_ms: v.pipe(contextNumber, v.minValue(0)),
    values: v.pipe(v.array(contextNumber), v.minLength(1), v.maxLength(HISTORY_MAX_VALUES)),
    onset: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(HISTORY_MAX_VALUES - 1)),
    timestamps: v.optional(v.pipe(v.array(isoTimestamp), v.maxLength(HISTORY_MAX_VALUES))),
    level: v.optional(v.pipe(v.array(v.nullable(contextNumber)), v.maxLength(HISTORY_MAX_VALUES))),
  }),
  v.check((h) => h.onset < h.values.length, "onset must index a value"),
  // Every reading's time a date (a page reads start + i * step_ms): a huge step_ms is not one.
  v.check(
    (h) =>
      !Number.isNaN(new Date(Date.parse(h.start) + (h.values.length - 1) * h.step_ms).getTime()),
    "start + step_ms × (values - 1) must be a date (step_ms too large)",
  ),
  v.check(
    (h) =>
      (h.timestamps === undefined || h.timestamps.length === h.values.length) &&
      (h.level === undefined || h.level.length === h.values.length),
    "timestamps and level must have one entry per value",
  ),
);
export type History = v.InferOutput<typeof historySchema>;

/**
 * A sensor that a flagged sensor's cross-sensor prediction leans on (from the model's principal
 * subspace), listed by how much the flagged sensor's reconstruction leans on each: `weight` is how
 * closely the subspace ties the two (0..1, the cosine of their loadings; 1: they move as one);
 * `moved` is this sensor's own deviation in the alert's window, signed, in robust standard
 * deviations of its training readings (its reading farthest from its training location; a
 * sensor with a running level: its deviation from that level). A partner that did not move beside
 * a sensor that did reads "A moved alone"; both moving apart reads "the relation between A and B
 * broke". `values`, when given, are this sensor's readings at the times of the flagged sensor's
 * `history` (one per history value, same `start`, `step_ms` and `timestamps`; `null` where none
 * was kept), so a page can draw the two on one time axis; left out when the alert had no room for
 * them (the engine fills the flagged sensors' own histories first) or when this sensor is listed
 * in the same alert with its own `history`.
 */
export const relatedSensorSchema = v.object({
  feature_idx: featureIdx,
  feature: featureName,
  weight: v.pipe(contextNumber, v.minValue(0), v.maxValue(1)),
  moved: contextNumber,
  values: v.optional(v.pipe(v.array(v.nullable(contextNumber)), v.maxLength(HISTORY_MAX_VALUES))),
});
export type RelatedSensor = v.InferOutput<typeof relatedSensorSchema>;

/** One anomalous feature as the original main server knows it; `feature` and the evidence are ours. */
export const anomalousFeatureInputSchema = v.object({
  feature_idx: featureIdx,
  score,
  feature: v.optional(featureName),
  severity: v.optional(evidenceEntries.severity),
  value: v.optional(evidenceEntries.value),
  window: v.optional(evidenceEntries.window),
  typical: v.optional(evidenceEntries.typical),
  statistic: v.optional(evidenceEntries.statistic),
  history: v.optional(historySchema),
  related: v.optional(v.pipe(v.array(relatedSensorSchema), v.maxLength(RELATED_MAX))),
});

/** What the original engine sent: every field the main server required then. */
const originalEntries = {
  timestamp: isoTimestamp,
  anomaly_detected: v.boolean(),
  num_anomalous_features: v.pipe(v.number(), v.integer(), v.minValue(0)),
  anomalous_features: v.pipe(v.array(anomalousFeatureInputSchema), v.maxLength(100_000)),
};

/** Our additions; optional on input so alerts from the original design's engine are accepted. */
const ourEntries = {
  alert_id: v.pipe(v.string(), v.uuid("a UUID")),
  stream_id: v.pipe(v.string(), v.regex(STREAM_ID_PATTERN)),
  frame_timestamp: isoTimestamp,
  max_score: score,
  threshold: score,
  model_version: v.pipe(v.string(), v.minLength(1), v.maxLength(200), storableText),
  /** The model that scored the window (with `model_version`, its version). */
  model_name: v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)),
  latency_ms: v.pipe(v.number(), v.finite(), v.minValue(0)),
};

/**
 * Incident fields (`ALERT_MODE=incident`, the default): every alert of one incident shares its
 * `incident_id`; `event` says which step of the lifecycle it is; `incident_started_at` is the
 * frame timestamp of the window that opened it, on every event, so the backend can place an
 * incident whose `opened` alert arrives late. `max_severity` is the largest listed severity.
 * A `resolved` alert has `anomaly_detected: false` and lists the incident's sensors with their
 * peak evidence. Absent in `ALERT_MODE=frame` and from the original design's engine.
 */
const incidentEntries = {
  incident_id: v.optional(v.pipe(v.string(), v.uuid("a UUID"))),
  event: v.optional(v.picklist(INCIDENT_EVENTS)),
  incident_started_at: v.optional(isoTimestamp),
  max_severity: v.optional(severity),
  /**
   * The incident's fault kind, decided when it opens and revised by an `updated` when the
   * evidence changes its reading; a `resolved` repeats the last one. Absent from older engines.
   */
  kind: v.optional(v.picklist(FAULT_KINDS)),
};

/** `num_anomalous_features` is the full count; the list may be capped, never longer. */
function countCoversList<
  T extends { num_anomalous_features: number; anomalous_features: unknown[] },
>() {
  return v.check<T, string>(
    (a) => a.num_anomalous_features >= a.anomalous_features.length,
    "num_anomalous_features must be at least the length of anomalous_features",
  );
}

/**
 * `max_score` is the alert's largest score: at least every listed feature's (the list may be cut
 * to the top sensors, so it may be larger). A smaller one would hide the alert from
 * `GET /alerts?min_score=` while its features match. Absent: the backend takes the largest listed.
 */
function maxScoreCoversList<
  T extends { max_score?: number; anomalous_features: { feature_idx: number; score: number }[] },
>() {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    if (!dataset.typed || dataset.value.max_score === undefined) return;
    const alert = dataset.value;
    const max = alert.max_score!;
    const over = alert.anomalous_features.find((f) => f.score > max);
    if (!over) return;
    addIssue({
      message: `must be at least every listed feature's score: feature_idx ${over.feature_idx} scores ${over.score}, max_score is ${max}`,
      input: max,
      path: [{ type: "object", origin: "value", input: alert, key: "max_score", value: max }],
    });
  });
}

/** `incident_id`, `event` and `incident_started_at` come together or not at all. */
function incidentFieldsTogether<
  T extends { incident_id?: string; event?: string; incident_started_at?: string },
>() {
  return v.check<T, string>(
    (a) =>
      (a.incident_id === undefined) === (a.event === undefined) &&
      (a.incident_id === undefined) === (a.incident_started_at === undefined),
    "incident_id, event and incident_started_at must be given together",
  );
}

/**
 * What the backend accepts: the original fields required, ours optional. Unknown fields are
 * ignored (an upstream may add some); the stored alert keeps only known fields.
 */
export const alertInputSchema = v.pipe(
  v.object({
    ...originalEntries,
    timestamp: originalTimestamp,
    alert_id: v.optional(ourEntries.alert_id),
    stream_id: v.optional(ourEntries.stream_id),
    frame_timestamp: v.optional(ourEntries.frame_timestamp),
    max_score: v.optional(ourEntries.max_score),
    threshold: v.optional(ourEntries.threshold),
    model_version: v.optional(ourEntries.model_version),
    model_name: v.optional(ourEntries.model_name),
    latency_ms: v.optional(ourEntries.latency_ms),
    ...incidentEntries,
  }),
  countCoversList(),
  maxScoreCoversList(),
  incidentFieldsTogether(),
);

/**
 * What our engine sends: every field required, each listed feature named, with its evidence
 * (`severity`, `value`, `window`, `statistic`; `typical` whenever the model's metadata has
 * typical ranges), and `max_severity`. The incident fields come in `ALERT_MODE=incident`.
 */
export const alertSchema = v.pipe(
  v.object({
    ...originalEntries,
    ...ourEntries,
    ...incidentEntries,
    max_severity: evidenceEntries.severity,
    anomalous_features: v.pipe(
      v.array(
        v.object({
          ...anomalousFeatureInputSchema.entries,
          feature: featureName,
          severity: evidenceEntries.severity,
          value: evidenceEntries.value,
          window: evidenceEntries.window,
          statistic: evidenceEntries.statistic,
        }),
      ),
      v.maxLength(100_000),
    ),
  }),
  countCoversList(),
  maxScoreCoversList(),
  incidentFieldsTogether(),
);

const modelAliasSchema = v.object({ model: ourEntries.model_name });

/**
 * What `POST /api/v1/alert` reads: {@link alertInputSchema}, with `model` taken as `model_name`
 * (SPEC §9 names an alert's model `model`; our engine sends `model_name`, which is what is stored
 * and answered). Both given and different: an issue at `model`. Kept outside `alertInputSchema` so
 * its published JSON Schema (alert-input.schema.json) stays the engine's field names.
 */
export const alertIntakeSchema = v.pipe(
  v.unknown(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const input = dataset.value;
    if (typeof input !== "object" || input === null || !Object.hasOwn(input, "model")) {
      return input;
    }
    const { model, ...rest } = input as Record<string, unknown>;
    const at = (value: unknown) =>
      [{ type: "object", origin: "value", input, key: "model", value }] as [v.ObjectPathItem];
    const named = v.safeParse(modelAliasSchema, { model });
    if (!named.success) {
      addIssue({ message: named.issues[0].message, input: model, path: at(model) });
      return NEVER;
    }
    if (rest.model_name !== undefined && rest.model_name !== model) {
      addIssue({
        message: `${model} differs from model_name (model is its alias: send one of them, or both alike)`,
        input: model,
        path: at(model),
      });
      return NEVER;
    }
    return { ...rest, model_name: model };
  }),
  alertInputSchema,
);

export type AlertInput = v.InferOutput<typeof alertInputSchema>;
export type Alert = v.InferOutput<typeof alertSchema>;
export type AnomalousFeature = Alert["anomalous_features"][number];

/** The backend's answer to an accepted (or already stored) alert. */
export const alertAcceptedSchema = v.object({
  status: v.literal("ok"),
  alert_id: v.optional(v.string()),
});
