// Configuration of both services from environment variables: one defaults table, parsed once.
import * as v from "valibot";
import { AUTH_MODES, parseRoleMap } from "./auth.ts";
import { parseModelRoutes } from "./model_routes.ts";
import { webhookSecretProblem } from "./webhook_signature.ts";

/** Raised for a bad environment variable; the message names it, e.g. `'MAX_RETRIES' must be an integer 1..5, got "9"`. */
export class ConfigError extends RangeError {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function int(name: string, fallback: number, min: number, max: number) {
  return v.pipe(
    v.optional(v.string(), String(fallback)),
    v.transform((s) => s.trim()),
    v.check(
      (s) => /^-?\d+$/.test(s) && +s >= min && +s <= max,
      (i) => `'${name}' must be an integer ${min}..${max}, got ${JSON.stringify(i.input)}`,
    ),
    v.transform(Number),
  );
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function num(name: string, fallback: number, min: number, max: number) {
  return v.pipe(
    v.optional(v.string(), String(fallback)),
    v.transform((s) => s.trim()),
    v.check(
      // Decimal notation only: Number() would also read "0x1E" (30) or "0b1".
      (s) => DECIMAL.test(s) && Number.isFinite(+s) && +s >= min && +s <= max,
      (i) => `'${name}' must be a number ${min}..${max}, got ${JSON.stringify(i.input)}`,
    ),
    v.transform(Number),
  );
}

function str(name: string, fallback: string, pattern = /^.+$/s) {
  return v.pipe(
    v.optional(v.string(), fallback),
    v.check(
      (s) => pattern.test(s),
      (i) => `'${name}' is not valid: ${JSON.stringify(i.input)}`,
    ),
  );
}

/** `MODEL_ROUTES`: parsed into routes here, so a bad entry stops the start with its message. */
function modelRoutes(name: string) {
  return v.pipe(
    v.optional(v.string(), ""),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      try {
        return parseModelRoutes(dataset.value);
      } catch (error) {
        addIssue({ message: (error as Error).message.replace("'MODEL_ROUTES'", `'${name}'`) });
        return NEVER;
      }
    }),
  );
}

/**
 * A URL's `user:password@`, with or without a scheme (`user:pw@host` parses as scheme `user:`),
 * found without parsing it: a value no URL parser takes must not be quoted with its password.
 */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)?[^/?#@\s]*@/i;

/** Whether a URL names a user or password (`user:password@`). */
const holdsCredentials = (s: string) => USERINFO.test(s.trim());

/** A URL as a message quotes it, any `user:password@` left out. */
const quoted = (s: string) => JSON.stringify(s.replace(USERINFO, "$1…@"));

/** Refuses `user:password@` without quoting the value: fetch refuses such a URL, and it would be logged and shown. */
const noCredentials = (name: string) =>
  v.check(
    (s: string) => !holdsCredentials(s),
    `'${name}' must not hold a user or password (user:password@): requests to it would fail and it would be logged and shown; give the address alone (tokens have settings of their own)`,
  );

function url(name: string, fallback: string) {
  return v.pipe(
    v.optional(v.string(), fallback),
    noCredentials(name),
    v.check(
      (s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol),
      (i) => `'${name}' must be an http(s) URL, got ${quoted(i.input)}`,
    ),
    v.transform((s) => s.replace(/\/+$/, "")),
  );
}

function pick<const T extends readonly string[]>(name: string, fallback: T[number], options: T) {
  return v.pipe(
    v.optional(v.string(), fallback),
    v.transform((s) => s.trim().toLowerCase()),
    v.check(
      (s) => (options as readonly string[]).includes(s),
      (i) => `'${name}' must be one of ${options.join("|")}, got ${JSON.stringify(i.input)}`,
    ),
    v.transform((s) => s as T[number]),
  );
}

function secret(name: string, minLength: number) {
  return v.optional(
    v.pipe(
      v.string(),
      v.check(
        (s) => s === "" || s.length >= minLength,
        `'${name}' must be at least ${minLength} characters`,
      ),
      v.transform((s) => (s === "" ? undefined : s)),
    ),
  );
}

/**
 * The alerts' signing secret, checked as signing will read it (`whsec_` and base64, or at least
 * 16 characters), so a secret that cannot sign stops the start instead of every delivery.
 */
function signingSecret(name: string) {
  return v.optional(
    v.pipe(
      v.string(),
      v.check(
        (s) => s === "" || webhookSecretProblem(s) === undefined,
        (i) => `'${name}' ${webhookSecretProblem(i.input)}`,
      ),
      v.transform((s) => (s === "" ? undefined : s)),
    ),
  );
}

/** An http(s) URL that may be absent; blank counts as absent. */
function optionalUrl(name: string) {
  return v.optional(
    v.pipe(
      v.string(),
      noCredentials(name),
      v.check(
        (s) => s.trim() === "" || (URL.canParse(s) && /^https?:$/.test(new URL(s).protocol)),
        (i) => `'${name}' must be an http(s) URL, got ${quoted(i.input)}`,
      ),
      v.transform((s) => (s.trim() === "" ? undefined : s.trim().replace(/\/+$/, ""))),
    ),
  );
}

/** A variable that may be absent; blank counts as absent. */
function optionalText() {
  return v.optional(
    v.pipe(
      v.string(),
      v.transform((s) => (s.trim() === "" ? undefined : s.trim())),
    ),
  );
}

/** `OIDC_ROLE_MAP`: parsed here, so a bad entry stops the start with its message. */
function roleMap(name: string, fallback: string) {
  return v.pipe(
    v.optional(v.string(), fallback),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      try {
        return parseRoleMap(dataset.value);
      } catch (error) {
        addIssue({ message: `'${name}': ${(error as Error).message}` });
        return NEVER;
      }
    }),
  );
}

const LOG_LEVELS = ["silent", "fatal", "error", "warn", "info", "debug", "trace"] as const;
const host = (name: string, fallback: string) => str(name, fallback, /^[A-Za-z0-9.:[\]-]+$/);
const port = (name: string, fallback: number) => int(name, fallback, 0, 65535);

/** Engine configuration (SPEC §5): the original design's names plus ours. */
export const engineConfigSchema = v.object({
  APP_HOST: host("APP_HOST", "0.0.0.0"),
  APP_PORT: port("APP_PORT", 9000),
  NESTJS_URL: url("NESTJS_URL", "http://localhost:3000"),
  NESTJS_ANOMALY_ENDPOINT: str("NESTJS_ANOMALY_ENDPOINT", "/api/v1/alert", /^\/[^\s]*$/),
  QUEUE_MAX_SIZE: int("QUEUE_MAX_SIZE", 100, 1, 65536),
  INFERENCE_BATCH_SIZE: int("INFERENCE_BATCH_SIZE", 64, 1, 4096),
  INFERENCE_SESSIONS: int("INFERENCE_SESSIONS", 0, 0, 16),
  DEFAULT_MODEL_NAME: str("DEFAULT_MODEL_NAME", "featurewise_ocsvm", /^[A-Za-z0-9._-]+$/),
  /** Streams to models by glob on stream_id, first match wins (`boiler-*=boiler,line-*=packaging`); the rest go to DEFAULT_MODEL_NAME. */
  MODEL_ROUTES: modelRoutes("MODEL_ROUTES"),
  DEFAULT_DEVICE: pick("DEFAULT_DEVICE", "auto", ["auto", "cuda", "cpu"] as const),
  MAX_RETRIES: int("MAX_RETRIES", 5, 1, 5),
  MODEL_DIR: str("MODEL_DIR", "models"),
  // Flat models (NAME.onnx + NAME.json) copied into MODEL_DIR's registry at start, as `npm start`
  // does: a container's engine can then retrain and activate versions in its own volume.
  MODEL_SEED_DIR: optionalText(),
  BATCH_MAX_DELAY_MS: int("BATCH_MAX_DELAY_MS", 2, 0, 1000),
  ANOMALY_THRESHOLD: num("ANOMALY_THRESHOLD", 0.9, 0, 1),
  MAX_ALERT_FEATURES: int("MAX_ALERT_FEATURES", 1000, 1, 100_000),
  MAX_BODY_BYTES: int("MAX_BODY_BYTES", 512 * 1024, 1024, 256 * 1024 * 1024),
  MAX_DECOMPRESSED_BYTES: int("MAX_DECOMPRESSED_BYTES", 4 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
  BODY_TIMEOUT_MS: int("BODY_TIMEOUT_MS", 10_000, 100, 600_000),
  /** How far ahead of the engine's clock a frame's timestamp may be (clock skew); past it, 422. */
  FRAME_MAX_AHEAD_S: int("FRAME_MAX_AHEAD_S", 300, 1, 31_536_000),
  DATA_DIR: str("DATA_DIR", ".data/engine"),
  // Operators' decisions (silences, verdicts) pulled from the backend, last good copy kept under
  // DATA_DIR/decisions (a scale-out worker: DATA_DIR/decisions/worker-<id>/): from where (empty:
  // NESTJS_URL) and every how many seconds (0: not pulled).
  DECISIONS_URL: optionalUrl("DECISIONS_URL"),
  DECISIONS_POLL_S: int("DECISIONS_POLL_S", 0, 0, 86_400),
  // A backend API token (viewer role) for those pulls, when the backend signs people in.
  DECISIONS_TOKEN: secret("DECISIONS_TOKEN", 16),
  // ... or a file holding it (compose's `tokens` service writes one); DECISIONS_TOKEN wins.
  DECISIONS_TOKEN_FILE: optionalText(),
  ALERT_SIGNING_SECRET: signingSecret("ALERT_SIGNING_SECRET"),
  INGEST_TOKEN: secret("INGEST_TOKEN", 16),
  // The model operations API (GET /models, POST /models/{name}/activate) needs it when set.
  ADMIN_TOKEN: secret("ADMIN_TOKEN", 16),
  ALERT_TIMEOUT_MS: int("ALERT_TIMEOUT_MS", 5000, 100, 600_000),
  RETRY_BASE_MS: int("RETRY_BASE_MS", 200, 1, 60_000),
  RETRY_MAX_MS: int("RETRY_MAX_MS", 10_000, 1, 600_000),
  ALERT_CONCURRENCY: int("ALERT_CONCURRENCY", 4, 1, 256),
  OUTBOX_MAX_ALERTS: int("OUTBOX_MAX_ALERTS", 100_000, 1, 10_000_000),
  // The undelivered alerts are held in memory too, and one can be ~0.7 MB (1,000 sensors'
  // evidence): the count alone would let them take gigabytes before it stops new frames.
  OUTBOX_MAX_BYTES: int("OUTBOX_MAX_BYTES", 256 * 2 ** 20, 2 ** 20, 2 ** 40),
  INGEST_WORKERS: int("INGEST_WORKERS", 0, 0, 64),
  SHUTDOWN_TIMEOUT_MS: int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
  LOG_LEVEL: pick("LOG_LEVEL", "info", LOG_LEVELS),
  /** `incident`: one incident per anomaly (opened/updated/resolved); `frame`: one alert per anomalous window. */
  ALERT_MODE: pick("ALERT_MODE", "incident", ["incident", "frame"] as const),
  /** An incident opens when K of the last N windows of a stream are anomalous (K <= N). Defaults measured: engine/README.md. */
  INCIDENT_CONFIRM_K: int("INCIDENT_CONFIRM_K", 2, 1, 64),
  INCIDENT_CONFIRM_N: int("INCIDENT_CONFIRM_N", 3, 1, 64),
  /** Consecutive quiet windows that resolve an incident. */
  INCIDENT_QUIET_WINDOWS: int("INCIDENT_QUIET_WINDOWS", 30, 1, 1_000_000),
  /** Least stream time between two `updated` alerts of one incident. */
  INCIDENT_UPDATE_MIN_MS: int("INCIDENT_UPDATE_MIN_MS", 120_000, 0, 86_400_000),
  /** Rise of an incident's max severity (-log10 units) worth an `updated` alert. */
  INCIDENT_UPDATE_SEVERITY_RISE: num("INCIDENT_UPDATE_SEVERITY_RISE", 2, 0, 1000),
  /** An incident whose stream sends no window for this long is resolved. */
  INCIDENT_STALE_MS: int("INCIDENT_STALE_MS", 300_000, 1000, 86_400_000),
  MAX_STREAMS: int("MAX_STREAMS", 1024, 1, 1_000_000),
  /** Consecutive frames failing a model's running condition that confirm a stop (1: the first one). */
  RUNNING_STOP_FRAMES: int("RUNNING_STOP_FRAMES", 3, 1, 1000),
  /** Frames passing the running condition again after a stop that are still dropped: the machine's start-up (0: none). */
  RUNNING_SETTLE_FRAMES: int("RUNNING_SETTLE_FRAMES", 0, 0, 86_400),
  /** Raw frames kept per live stream for an incident's history before onset (300: 5 min at 1 Hz); 0 keeps none. */
  EVIDENCE_HISTORY_FRAMES: int("EVIDENCE_HISTORY_FRAMES", 300, 0, 86_400),
  /** Memory for those frames across all streams and models; when full, a new stream takes the ring of one unfed for a ring's span, else goes without. */
  EVIDENCE_HISTORY_MAX_MB: int("EVIDENCE_HISTORY_MAX_MB", 1024, 1, 1_048_576),
  /**
   * Bytes of context per alert: each sensor's `history` first (most severe whole), then related
   * sensors' readings. 64 KiB keeps an incident alert of a few dozen sensors under the 100 KiB
   * JSON body limit a NestJS server has by default (the original design's main server).
   */
  EVIDENCE_ALERT_MAX_BYTES: int("EVIDENCE_ALERT_MAX_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
  /**
   * Bytes of an alert's whole JSON body: past it the least severe sensors' context, then their
   * typical range, then the sensors themselves are left out (`num_anomalous_features` still counts
   * them). 100 KiB is the original design's main server's limit (NestJS's default JSON body
   * limit); our backend takes 16 MiB, which `npm start` and compose set.
   */
  ALERT_MAX_BYTES: int("ALERT_MAX_BYTES", 100 * 1024, 4096, 16 * 1024 * 1024),
  // Training history per model (engine/history): where (empty: DATA_DIR/history; a scale-out
  // worker writes its own folder, HISTORY_DIR/<model>/worker-<NATS_WORKER_ID or host>/), how
  // many bytes per model (and writer) at most (0: none recorded; the oldest chunks go first), and
  // one run of HISTORY_RUN_FRAMES consecutive frames kept in every HISTORY_EVERY_N of a stream. The
  // defaults keep 5 minutes of every 2 hours at 1 Hz: 12 runs (3,600 frames) a stream a day,
  // about 360 MB for 25,000 sensors, so 1 GiB holds about 3 days of one stream, sampled across
  // the hours of each day. Scale HISTORY_EVERY_N with the frame rate.
  HISTORY_DIR: str("HISTORY_DIR", "", /^.*$/s),
  // 0: off. Below 1 MiB the bound could not hold: a chunk being written is at least 64 KiB.
  HISTORY_MAX_BYTES: v.pipe(
    int("HISTORY_MAX_BYTES", 1024 ** 3, 0, 2 ** 50),
    v.check(
      (n) => n === 0 || n >= 2 ** 20,
      (i) => `'HISTORY_MAX_BYTES' must be 0 (off) or at least 1048576 (1 MiB), got ${i.input}`,
    ),
  ),
  HISTORY_EVERY_N: int("HISTORY_EVERY_N", 24, 1, 1_000_000),
  // The retraining gate injects anomalies into copies of recent runs: 100 frames to settle, 10 of
  // anomaly, window_size + 5 after it (models/retrain/inject.ts injectionRunFrames), 120 at the
  // default window of 5. Shorter runs leave the gate nothing to inject into and it holds every
  // candidate; a model with a wider window needs more, which retraining checks (it knows the
  // window) and names in the held report.
  HISTORY_RUN_FRAMES: v.pipe(
    int("HISTORY_RUN_FRAMES", 300, 1, 1_000_000),
    v.check(
      (n) => n >= 120,
      (i) =>
        `'HISTORY_RUN_FRAMES' must be at least 120 (the retraining gate injects anomalies into runs of 100 + 10 + window_size + 5 frames, window_size 5 by default), got ${i.input}`,
    ),
  ),
  /** `npm run retrain`: `auto` activates a candidate that passes the promotion gate, `manual` leaves it ready. */
  RETRAIN_PROMOTE: pick("RETRAIN_PROMOTE", "manual", ["auto", "manual"] as const),
  /**
   * The retraining's lookback: the most recent this many recorded frames (older chunks are not
   * read), so its memory is bounded (25,000 sensors: ~100 KB a frame). The default equals the
   * committed model's training set; 800 is the least a candidate can be judged on.
   */
  RETRAIN_MAX_FRAMES: int("RETRAIN_MAX_FRAMES", 3000, 800, 10_000_000),
  /**
   * Scheduled retraining (engine/retrain): every how many hours, counted from the end of the
   * previous round (0: no rounds, runs only when asked for with POST /models/{name}/retrain;
   * fractions allowed). Under FRAME_BUS=nats every worker schedules,
   * and one per model runs each interval (a lease in KV bucket `<NATS_STREAM>_retrain`),
   * publishing the candidate into the shared registry; ingest replicas never retrain.
   */
  RETRAIN_EVERY_H: num("RETRAIN_EVERY_H", 0, 0, 8760),
  // Scale-out (engine/bus/README.md): roles, the frame bus and its NATS JetStream settings.
  ENGINE_ROLE: pick("ENGINE_ROLE", "all", ["all", "ingest", "worker"] as const),
  FRAME_BUS: pick("FRAME_BUS", "memory", ["memory", "nats"] as const),
  NATS_URL: str("NATS_URL", "nats://127.0.0.1:4222", /^[A-Za-z0-9+.:/@,[\]_-]+$/),
  NATS_STREAM: str("NATS_STREAM", "FRAMES", /^[A-Za-z0-9_-]{1,64}$/),
  NATS_PARTITIONS: int("NATS_PARTITIONS", 32, 1, 1024),
  NATS_PUBLISH_TIMEOUT_MS: int("NATS_PUBLISH_TIMEOUT_MS", 2000, 50, 60_000),
  NATS_LEASE_MS: int("NATS_LEASE_MS", 10_000, 300, 600_000),
  NATS_MAX_LAG: int("NATS_MAX_LAG", 10_000, 1, 100_000_000),
  NATS_STREAM_MAX_BYTES: int("NATS_STREAM_MAX_BYTES", 1024 ** 3, 1024 * 1024, 2 ** 50),
  NATS_STREAM_MAX_AGE_S: int("NATS_STREAM_MAX_AGE_S", 86_400, 60, 365 * 86_400),
  NATS_WORKER_ID: str("NATS_WORKER_ID", "", /^[A-Za-z0-9_-]{0,64}$/),
});

/** Backend configuration (SPEC §6). */
export const backendConfigSchema = v.object({
  // Loopback by default: AUTH_MODE=none is only allowed there (compose sets 0.0.0.0 and token mode).
  HOST: host("HOST", "127.0.0.1"),
  PORT: port("PORT", 3000),
  DATABASE_URL: v.optional(
    v.pipe(
      v.string(),
      v.check(
        (s) => s === "" || /^postgres(ql)?:\/\//.test(s),
        "'DATABASE_URL' must be a postgres:// URL",
      ),
      v.transform((s) => (s === "" ? undefined : s)),
    ),
  ),
  PGLITE_DATA_DIR: v.optional(
    v.pipe(
      v.string(),
      v.transform((s) => (s === "" ? undefined : s)),
    ),
  ),
  ENGINE_URL: url("ENGINE_URL", "http://localhost:9000"),
  ALERT_SIGNING_SECRET: signingSecret("ALERT_SIGNING_SECRET"),
  INGEST_TOKEN: secret("INGEST_TOKEN", 16),
  SIMULATOR_RATE_HZ: num("SIMULATOR_RATE_HZ", 0, 0, 10_000),
  SIMULATOR_ANOMALY_EVERY_S: num("SIMULATOR_ANOMALY_EVERY_S", 20, 0, 86_400),
  SIMULATOR_STREAMS: int("SIMULATOR_STREAMS", 1, 1, 1000),
  /** Stops the first stream's machine once, this many seconds into the run (0 = never), ... */
  SIMULATOR_STOP_AT_S: num("SIMULATOR_STOP_AT_S", 0, 0, 86_400),
  /** ... for this long: its drive reads 0, then it runs on. */
  SIMULATOR_STOP_FOR_S: num("SIMULATOR_STOP_FOR_S", 60, 1, 86_400),
  /** Moves the first stream's operating point this many seconds into the run, for good (0 = never). */
  SIMULATOR_MOVE_AT_S: num("SIMULATOR_MOVE_AT_S", 0, 0, 31_536_000),
  SIMULATOR_FEATURES: int("SIMULATOR_FEATURES", 25_000, 1, 1_000_000),
  SIMULATOR_SEED: int("SIMULATOR_SEED", 7, 0, 2 ** 31 - 1),
  SHUTDOWN_TIMEOUT_MS: int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
  /** A request's body must have arrived this long after the request began (408 request_timeout). */
  BODY_TIMEOUT_MS: int("BODY_TIMEOUT_MS", 10_000, 100, 600_000),
  LOG_LEVEL: pick("LOG_LEVEL", "info", LOG_LEVELS),
  // When set, acknowledging incidents in the console (or the API) needs this token.
  CONSOLE_TOKEN: secret("CONSOLE_TOKEN", 16),
  // How long the console's Health page waits for the engine's answer.
  ENGINE_HEALTH_TIMEOUT_MS: int("ENGINE_HEALTH_TIMEOUT_MS", 2000, 100, 60_000),
  // The engine's ADMIN_TOKEN (same name, same value, like INGEST_TOKEN): sent as the bearer on
  // every call to the engine's model API (GET /models, activations, "Retrain now", retraining
  // reports); the backend never uses it to guard anything of its own.
  ADMIN_TOKEN: secret("ADMIN_TOKEN", 16),
  // Path of the notification routes file (backend/notify/README.md); unset = no notifications.
  NOTIFY_CONFIG: v.optional(
    v.pipe(
      v.string(),
      v.transform((s) => (s.trim() === "" ? undefined : s.trim())),
    ),
  ),
  /**
   * Seconds after a later incident of the same stream and model was stored that an incident its
   * engine never ended is closed as superseded (backend/README.md, `superseded_by`).
   */
  INCIDENT_SUPERSEDE_AFTER_S: num("INCIDENT_SUPERSEDE_AFTER_S", 900, 1, 604_800),
  /**
   * With notification routes: how often the backend reads the engine's `/stats` for its feed
   * conditions (streams silent, a running condition's sensor in doubt), and how long its reads
   * must fail in a row before the engine is out of reach, or not show a condition before it is
   * over (backend/notify/README.md).
   */
  FEED_WATCH_MS: int("FEED_WATCH_MS", 15_000, 100, 3_600_000),
  FEED_GRACE_MS: int("FEED_GRACE_MS", 60_000, 0, 86_400_000),
  // Retention (backend/retention/README.md): days an alert is kept with its evidence, and a
  // resolved incident nobody acted on (one with a verdict or acknowledgement is kept for good;
  // 0 = forever; fractions allowed; incidents >= alerts).
  RETENTION_ALERTS_DAYS: num("RETENTION_ALERTS_DAYS", 30, 0, 36_500),
  RETENTION_INCIDENTS_DAYS: num("RETENTION_INCIDENTS_DAYS", 365, 0, 36_500),
  /** Seconds from the end of one prune to the start of the next. */
  RETENTION_EVERY_S: num("RETENTION_EVERY_S", 300, 1, 86_400),
  /** Alerts (or incidents) deleted per statement. */
  RETENTION_BATCH: int("RETENTION_BATCH", 200, 1, 10_000),
  // Sign-in (contracts/auth.ts): none (loopback only), token (API_TOKENS_FILE) or oidc.
  AUTH_MODE: pick("AUTH_MODE", "none", AUTH_MODES),
  API_TOKENS_FILE: optionalText(),
  // Signs session cookies; unset: a random key per start (sessions end at a restart).
  SESSION_SECRET: secret("SESSION_SECRET", 32),
  SESSION_MAX_AGE_H: num("SESSION_MAX_AGE_H", 12, 0.01, 720),
  // The console's address as people's browsers reach it: OIDC's redirect goes back there.
  PUBLIC_URL: optionalUrl("PUBLIC_URL"),
  OIDC_ISSUER: optionalUrl("OIDC_ISSUER"),
  OIDC_CLIENT_ID: optionalText(),
  OIDC_CLIENT_SECRET: optionalText(),
  // The ID token / userinfo claim holding a person's roles or groups, and what its values mean.
  OIDC_ROLE_CLAIM: str("OIDC_ROLE_CLAIM", "roles", /^[\w.:/-]+$/),
  OIDC_ROLE_MAP: roleMap("OIDC_ROLE_MAP", "viewer=viewer,operator=operator,admin=admin"),
});

export type EngineConfig = v.InferOutput<typeof engineConfigSchema>;
export type BackendConfig = v.InferOutput<typeof backendConfigSchema>;

/**
 * Parses the environment once at start-up. Throws a {@link ConfigError} listing every bad
 * variable by name; unknown variables are ignored.
 *
 * @example const config = parseConfig(engineConfigSchema, process.env);
 */
export function parseConfig<S extends typeof engineConfigSchema | typeof backendConfigSchema>(
  schema: S,
  env: Env,
): v.InferOutput<S> {
  // Only the schema's own keys are read, so a huge or odd environment changes nothing.
  const input: Env = {};
  for (const key of Object.keys(schema.entries)) if (env[key] !== undefined) input[key] = env[key];
  const result = v.safeParse(schema, input);
  if (result.success) {
    const output = result.output as v.InferOutput<S>;
    const problem =
      "INCIDENT_CONFIRM_K" in output
        ? confirmProblem(output)
        : "SIMULATOR_STREAMS" in output
          ? simulatorProblem(output)
          : undefined;
    if (problem) throw new ConfigError(`invalid configuration: ${problem}`);
    return output;
  }
  const messages = result.issues.map((issue) => {
    const key = String(issue.path?.[0]?.key);
    // A secret `withSecretFiles` read from NAME_FILE: the file is what to fix. (A NAME_FILE the
    // schema reads itself, DECISIONS_TOKEN_FILE, gives way to NAME: NAME's value is its own.)
    const file = `${key}_FILE`;
    const named = env[file] && !(file in schema.entries) ? `'${key}' (from '${file}')` : `'${key}'`;
    return issue.message.includes(`'${key}'`)
      ? issue.message.replace(`'${key}'`, named)
      : `${named}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration: ${messages.join("; ")}`);
}

/**
 * Most sensors the simulator's plants may hold together (streams × features): its memory budget
 * (backend/simulator/stream_plan.ts says how it was measured).
 */
export const SIMULATOR_MAX_SENSORS = 1_000_000;

/** A start-up plan past the simulator's budget would be refused once the engine answers: say so now. */
function simulatorProblem(c: {
  SIMULATOR_RATE_HZ: number;
  SIMULATOR_STREAMS: number;
  SIMULATOR_FEATURES: number;
}) {
  const sensors = c.SIMULATOR_STREAMS * c.SIMULATOR_FEATURES;
  return c.SIMULATOR_RATE_HZ > 0 && sensors > SIMULATOR_MAX_SENSORS
    ? `'SIMULATOR_STREAMS' (${c.SIMULATOR_STREAMS}) × 'SIMULATOR_FEATURES' (${c.SIMULATOR_FEATURES}) = ${sensors} sensors, more than the simulator's ${SIMULATOR_MAX_SENSORS}: at most ${Math.floor(SIMULATOR_MAX_SENSORS / c.SIMULATOR_FEATURES)} streams of ${c.SIMULATOR_FEATURES} features`
    : undefined;
}

/** An incident opens when K of the last N windows are anomalous: K above N could never happen. */
function confirmProblem(c: { INCIDENT_CONFIRM_K: number; INCIDENT_CONFIRM_N: number }) {
  return c.INCIDENT_CONFIRM_K > c.INCIDENT_CONFIRM_N
    ? `'INCIDENT_CONFIRM_K' (${c.INCIDENT_CONFIRM_K}) must not exceed 'INCIDENT_CONFIRM_N' (${c.INCIDENT_CONFIRM_N}): an incident opens when K of the last N windows are anomalous`
    : undefined;
}
