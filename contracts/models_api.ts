// The engine's model operations API: GET /models, POST /models/{name}/activate and /retrain, GET /models/{name}/retrains/{version}.
import * as v from "valibot";
import { storableText } from "./storable.ts";

/** A version string that is also a safe folder name (`2.2.0+2c5406cfb2d9`). */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
/** A model name: the metadata's `name`, its folder and file stem. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const text = (max: number) => v.pipe(v.string(), v.maxLength(max), storableText);
/** Text as the engine recorded it (answers are read as they are; requests are checked). */
const recorded = (max: number) => v.pipe(v.string(), v.maxLength(max));

/** Who asks, as typed: trimmed, 1..200 characters (blank is not a name). */
const requestName = v.pipe(
  v.string("a name"),
  v.trim(),
  v.minLength(1, "a name of 1..200 characters"),
  v.maxLength(200, "a name of 1..200 characters"),
  storableText,
);

/** One activation: who switched a model from which version to which, when and why. */
export const activationSchema = v.object({
  name: v.pipe(v.string(), v.regex(MODEL_NAME_PATTERN)),
  version: v.pipe(v.string(), v.regex(VERSION_PATTERN)),
  from: v.nullable(v.string()),
  by: recorded(200),
  at: v.pipe(v.string(), v.isoTimestamp()),
  reason: recorded(1000),
});

const instant = v.pipe(v.string(), v.isoTimestamp());

/** Who asked for a run through `POST /models/{name}/retrain`, when and why (absent on a scheduled run). */
export const retrainAskedSchema = v.object({
  by: recorded(200),
  reason: recorded(1000),
  at: instant,
});

/** One retraining of a model, scheduled (`RETRAIN_EVERY_H`) or asked for, as the engine ran it. */
export const retrainRunSchema = v.object({
  started_at: instant,
  /** Null while it runs. */
  finished_at: v.nullable(instant),
  /**
   * `running`; `decided`: the promotion gate decided, or there was too little history (held);
   * `failed`: the run broke (see `error`), nothing changed.
   */
  outcome: v.picklist(["running", "decided", "failed"]),
  decision: v.optional(v.picklist(["promoted", "held"])),
  /** The version it trained (absent when none was written). */
  candidate_version: v.optional(v.string()),
  /** Whether a promoted candidate was activated (`RETRAIN_PROMOTE=auto`). */
  activated: v.optional(v.boolean()),
  /** The gate's reasons, or why it was held without a candidate. */
  reasons: v.array(v.string()),
  error: v.optional(v.string()),
  /** Under scale-out (`FRAME_BUS=nats`): the worker that ran it (the one holding the model's retraining lease). */
  worker: v.optional(v.string()),
  /** Present when a person or script asked for this run (`POST /models/{name}/retrain`). */
  requested: v.optional(retrainAskedSchema),
});

/** A model's retraining: when the next round is due and how the last runs went. */
export const retrainScheduleSchema = v.object({
  /** Hours between scheduled rounds; 0: no schedule, runs only when asked for. */
  every_h: v.number(),
  /** When the next round starts; null while one runs, and with no schedule. */
  next_at: v.nullable(instant),
  last: v.optional(retrainRunSchema),
  /** The last run that promoted a candidate (a later run is most often held: nothing better). */
  last_promoted: v.optional(retrainRunSchema),
});

/** A model the engine serves, as `GET /models` lists it. */
export const servedModelSchema = v.object({
  name: v.string(),
  /** `registry`: MODEL_DIR/<name>/<version>/; `flat`: MODEL_DIR/<name>.onnx + .json. */
  layout: v.picklist(["registry", "flat"]),
  /** The version scoring now. */
  active_version: v.string(),
  /** Complete versions on disk, oldest first (only the active one while `registry_error`). */
  versions: v.array(v.string()),
  n_features: v.number(),
  window_size: v.number(),
  /** `MODEL_ROUTES` globs that reach it; `*` for the default model's unmatched streams. */
  routes: v.array(v.string()),
  /** Streams with a window in memory. */
  live_streams: v.number(),
  /**
   * The same count under the name SPEC §9 gives it; engines sent only `live_streams` before
   * (optional for them), every engine now sends both.
   */
  streams: v.optional(v.number()),
  /**
   * Versions in `versions` with other feature names or another window size than the active one:
   * activating one needs `reset_windows` (its streams start afresh). Absent when there are none,
   * and under scale-out, where workers switch only between versions that agree.
   */
  incompatible_versions: v.optional(v.array(v.string())),
  /**
   * Present when the model's registry entry cannot be read (an `ACTIVE.json` that does not parse):
   * the registry's error `code` and `message`. The served version goes on scoring; `versions`
   * then lists only it.
   */
  registry_error: v.optional(v.object({ code: v.string(), message: v.string() })),
  /** The activation the registry's pointer holds (who moved it to the version it names, when, why), when there is one. */
  activation: v.optional(activationSchema),
  /**
   * Present only while the registry's pointer names another version than `active_version`: that
   * version, and why it is not scoring yet. `pending`: not tried yet (followed within seconds);
   * `retrying`: a try failed (`error`), the next at `next_try_at`; `refused`: it cannot replace
   * the served one (`error`: not found, a broken entry, other features), so this process goes on
   * scoring with `active_version` until the pointer moves.
   */
  registry_pointer: v.optional(
    v.object({
      version: v.string(),
      following: v.picklist(["pending", "retrying", "refused"]),
      error: v.optional(v.string()),
      next_try_at: v.optional(instant),
    }),
  ),
  /**
   * Retraining, when the engine can retrain: `RETRAIN_EVERY_H` set, or the training history on
   * (`HISTORY_MAX_BYTES` above 0: runs when asked for, `every_h` 0).
   */
  retrain: v.optional(retrainScheduleSchema),
});

export const modelsResponseSchema = v.object({ models: v.array(servedModelSchema) });

/** `POST /models/{name}/activate`. */
export const activateRequestSchema = v.strictObject({
  version: v.pipe(
    v.string(),
    v.regex(VERSION_PATTERN, "version must be a safe path segment ([A-Za-z0-9._+-], 1..128)"),
    v.check((s) => !s.includes(".."), "version must not contain '..'"),
  ),
  /** Allow a version whose feature names or window size differ: those streams start afresh. */
  reset_windows: v.optional(v.boolean()),
  /** Who asks (recorded); defaults to "api". */
  by: v.optional(requestName),
  reason: v.optional(text(1000)),
});

export const activateResponseSchema = v.object({
  status: v.literal("active"),
  model: v.string(),
  version: v.string(),
  from: v.string(),
  activation: activationSchema,
  /** Whether the streams' windows were started afresh (`reset_windows` and an incompatible version). */
  windows_reset: v.boolean(),
  /** Streams whose windows were kept (or dropped, when reset) across the switch. */
  streams: v.number(),
  /**
   * `true`: the version asked for was the active one already (the registry's pointer names it):
   * nothing was loaded or recorded, `from` is the version itself and `activation` the record that
   * made it active.
   */
  unchanged: v.optional(v.boolean()),
});

/** `POST /models/{name}/retrain`: an optional body (a JSON object) saying who asks and why. */
export const retrainRequestSchema = v.pipe(
  // Every field is optional: an array must not pass for an empty object.
  v.custom<unknown>((body) => !Array.isArray(body), "the body must be a JSON object"),
  v.strictObject({
    /** Who asks (recorded with the run); defaults to "api". */
    by: v.optional(requestName),
    reason: v.optional(text(1000)),
  }),
);

/** `202` to `POST /models/{name}/retrain`: the run, started (outcome `running` while it lasts). */
export const retrainResponseSchema = v.object({
  status: v.literal("started"),
  model: v.string(),
  run: retrainRunSchema,
});

// The retraining report (models/retrain/report.ts `RetrainReport`), as far as the console shows
// it. Loose objects: the report carries more (tolerances, per-event hits, sensor checks) and
// grows; what is not listed here passes through untouched.

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
/** A measurement the gate could not take (nothing to measure) is null. */
const measure = v.nullable(v.number());
const stretch = v.looseObject({ frames: count, runs: count, from: v.string(), to: v.string() });

/** One criterion of the promotion gate: both models' values and the worst the candidate may have. */
export const retrainCriterionSchema = v.looseObject({
  name: v.string(),
  active: measure,
  candidate: measure,
  limit: measure,
  pass: v.boolean(),
  note: v.optional(v.string()),
});

/** One model's results on the gate's data: the recent stretch, confirmed incidents, injected events per kind. */
export const retrainMetricsSchema = v.looseObject({
  version: v.string(),
  recent: v.looseObject({
    windows: count,
    alarmWindows: count,
    incidents: count,
    falseAlarmFramesPer10k: v.number(),
    falseIncidentsPer10k: v.number(),
  }),
  confirmed: v.looseObject({ incidents: count, detected: count, recall: measure }),
  injected: v.record(
    v.string(),
    v.looseObject({ events: count, detected: count, recall: measure }),
  ),
});

/** `GET /models/{name}/retrains/{version}`: the report a retraining wrote beside its candidate. */
export const retrainReportSchema = v.looseObject({
  model: v.string(),
  candidate_version: v.string(),
  active_version: v.string(),
  decision: v.picklist(["promoted", "held"]),
  reasons: v.array(v.string()),
  promote: v.optional(v.picklist(["auto", "manual"])),
  /** The activation when the candidate was promoted with `RETRAIN_PROMOTE=auto`. */
  activated: v.nullable(activationSchema),
  decided_at: v.string(),
  criteria: v.array(retrainCriterionSchema),
  /** `candidate` is null when it could not be loaded. */
  models: v.looseObject({
    active: retrainMetricsSchema,
    candidate: v.nullable(retrainMetricsSchema),
  }),
  data: v.looseObject({
    frames_read: count,
    time_range: v.looseObject({ from: v.nullable(v.string()), to: v.nullable(v.string()) }),
    usable_frames: count,
    false_positive_frames_used: count,
    /** Frames read but left out, by why. */
    excluded_read: v.record(v.string(), count),
    /** Frames the engine never recorded, by why. */
    excluded_before_recording: v.record(v.string(), count),
    training: stretch,
    /** The recent stretch both models were judged on. */
    recent: stretch,
    confirmed_incidents: v.array(v.string()),
    injected: v.looseObject({
      per_kind: count,
      seed: v.number(),
      events: count,
      /** Absent in reports written before injected events were left out by verdicts. */
      left_out: v.optional(
        v.looseObject({
          events: count,
          rule: v.string(),
          sensors: v.array(
            v.looseObject({ feature: v.string(), events: count, judged_normal_std: v.number() }),
          ),
        }),
      ),
    }),
    /** Absent in reports written before stuck stretches were cut out of training. */
    stuck_left_out: v.optional(
      v.looseObject({
        rule: v.string(),
        frames: count,
        sensors: v.array(
          v.looseObject({
            name: v.string(),
            frames: count,
            action: v.picklist(["left_out", "kept"]),
          }),
        ),
      }),
    ),
  }),
});

export type ServedModel = v.InferOutput<typeof servedModelSchema>;
export type ActivateRequest = v.InferOutput<typeof activateRequestSchema>;
export type ActivateResponse = v.InferOutput<typeof activateResponseSchema>;
export type ActivationRecord = v.InferOutput<typeof activationSchema>;
export type RetrainRun = v.InferOutput<typeof retrainRunSchema>;
export type RetrainSchedule = v.InferOutput<typeof retrainScheduleSchema>;
export type RetrainAsked = v.InferOutput<typeof retrainAskedSchema>;
export type RetrainRequest = v.InferOutput<typeof retrainRequestSchema>;
export type RetrainResponse = v.InferOutput<typeof retrainResponseSchema>;
export type RetrainReport = v.InferOutput<typeof retrainReportSchema>;
export type RetrainCriterion = v.InferOutput<typeof retrainCriterionSchema>;
export type RetrainMetrics = v.InferOutput<typeof retrainMetricsSchema>;
