// The notification routes file (NOTIFY_CONFIG): parsed once at start-up, errors naming route and field.
import { readFile } from "node:fs/promises";
import * as v from "valibot";
import { webhookSecretProblem } from "../../contracts/webhook_signature.ts";
import { DURATION_PATTERN, parseDuration } from "./_duration.ts";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry_policy.ts";

/** A bad routes file; the message names the file, the route and the field. */
export class NotifyConfigError extends RangeError {
  override name = "NotifyConfigError";
}

export const NOTIFY_FORMATS = ["json", "slack"] as const;
export type NotifyFormat = (typeof NOTIFY_FORMATS)[number];
export const INCIDENT_KINDS = ["process", "sensor"] as const;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];
/** What a route's `match.kind` selects: an incident's kind, or `feed` (the feed conditions only). */
export const ROUTE_KINDS = [...INCIDENT_KINDS, "feed"] as const;
export type RouteKind = (typeof ROUTE_KINDS)[number];

/** One route as the rest of the code sees it: matchers, target, reminders, retry policy. */
export interface NotifyRoute {
  name: string;
  match: { stream?: string; min_severity?: number; kind?: RouteKind };
  webhook: { url: string; format: NotifyFormat; secret?: string; timeoutMs: number };
  /** Reminder period for an incident still open; absent = no reminders. */
  repeatEveryMs?: number;
  /**
   * Oldest event (by frame time, at the pass that plans it) the route is told of: an older one is
   * a backfill, written `stale` instead of paging (a route told of the incident still hears its
   * end).
   */
  maxAgeMs: number;
  retry: RetryPolicy;
  /** Deliveries of this route in flight at once, so a slow receiver holds only its own slots. */
  concurrency: number;
}

export interface NotifyConfig {
  routes: NotifyRoute[];
  /** The console's public address, linked from each message when set. */
  consoleUrl?: string;
}

const duration = (least: number, what: string, most = Number.MAX_SAFE_INTEGER, mostWhat = "") =>
  v.pipe(
    v.string(),
    v.regex(DURATION_PATTERN, 'must be a duration such as "500ms", "30s", "15m", "4h" or "1d"'),
    v.transform((s) => parseDuration(s)!),
    v.minValue(least, `must be at least ${what}`),
    v.maxValue(most, `must be at most ${mostWhat}`),
  );

/** Longest wait between two tries a route may ask for (a longer one overflowed the next try's date). */
const RETRY_WAIT_MAX_MS = 7 * 86_400_000;

/**
 * An http(s) URL. Its messages never quote it (a webhook's path or query is often its secret),
 * and each check stands on its own: valibot runs every check of a pipe, also after one failed.
 */
const httpUrl = v.pipe(
  v.string(),
  v.check(
    (s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol),
    'must be an http(s) URL such as "https://hooks.example/path" (not quoted here: its path may be a secret)',
  ),
  // fetch refuses such a URL on every delivery, and the password would be shown with the error.
  v.check((s) => {
    const u = URL.canParse(s) ? new URL(s) : null;
    return u === null || (u.username === "" && u.password === "");
  }, "must not hold user:password@ (fetch refuses it; use webhook.secret, or a token in the path)"),
);

/** An environment variable's name, as `secret_env` must hold. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Whether a `secret_env` value reads as a variable's name that may be quoted in a message: not a
 * secret put there by mistake (not a name at all, or a long one that is not
 * UPPER_SNAKE_CASE, as a random token would be).
 */
function quotableEnvName(s: string): boolean {
  return (
    ENV_NAME.test(s) && s.length <= 64 && (s.length < 16 || /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$/.test(s))
  );
}

const routeSchema = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1..64 of A-Z a-z 0-9 . _ -")),
  match: v.optional(
    v.strictObject({
      stream: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
      min_severity: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
      kind: v.optional(v.picklist(ROUTE_KINDS, `must be one of ${ROUTE_KINDS.join("|")}`)),
    }),
    {},
  ),
  webhook: v.strictObject({
    url: httpUrl,
    format: v.optional(
      v.picklist(NOTIFY_FORMATS, `must be one of ${NOTIFY_FORMATS.join("|")}`),
      "json",
    ),
    secret: v.optional(
      v.pipe(
        v.string(),
        v.check(
          (s) => webhookSecretProblem(s) === undefined,
          "must be whsec_<base64> or at least 16 characters",
        ),
      ),
    ),
    // The message does not quote the value: it may be the secret itself, put here by mistake.
    secret_env: v.optional(
      v.pipe(
        v.string(),
        v.regex(
          ENV_NAME,
          "must name an environment variable (A-Z a-z 0-9 _, not starting with a digit), not hold the secret itself",
        ),
      ),
    ),
    // A receiver that has not answered in 10 minutes is not going to (and a timer holds at
    // most about 24.8 days: the only duration here that becomes one).
    timeout: v.optional(duration(100, "100ms", 600_000, "10m"), "10s"),
  }),
  repeat_every: v.optional(duration(1000, "1s")),
  // A backend outage shorter than a day still pages for what happened in it (a real page missed
  // is worse than a late one); a backfill of older data does not.
  max_age: v.optional(duration(60_000, "1m"), "24h"),
  retry: v.optional(
    v.strictObject({
      attempts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100))),
      initial: v.optional(duration(1, "1ms", RETRY_WAIT_MAX_MS, "7d")),
      max: v.optional(duration(1, "1ms", RETRY_WAIT_MAX_MS, "7d")),
    }),
  ),
  concurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64)), 4),
});

const fileSchema = v.strictObject({
  console_url: v.optional(httpUrl),
  routes: v.array(routeSchema),
});

type RawFile = v.InferOutput<typeof fileSchema>;

/** `match.min_severity` from a valibot path; an unknown key is named as the key itself. */
function fieldOf(path: readonly { key: unknown }[], from: number): string {
  return path
    .slice(from)
    .map((p) => String(p.key))
    .join(".");
}

function where(raw: unknown, index: number): string {
  const route = (raw as { routes?: { name?: unknown }[] })?.routes?.[index];
  const name = typeof route?.name === "string" ? `"${route.name}"` : "(no name)";
  return `route ${name} (routes[${index}])`;
}

function describeIssue(raw: unknown, issue: v.BaseIssue<unknown>): string {
  const path = issue.path ?? [];
  // valibot reports an unknown key of a strict object with the key itself as the last step.
  const message =
    issue.type === "strict_object" && issue.expected === "never"
      ? "is not a known field"
      : issue.kind === "schema" && issue.input === undefined
        ? "is required"
        : issue.kind === "schema"
          ? `must be ${issue.expected}, got ${issue.received}`
          : issue.message;
  if (path[0]?.key === "routes" && typeof path[1]?.key === "number") {
    const field = fieldOf(path, 2);
    return `${where(raw, path[1].key)}: ${field ? `'${field}' ` : ""}${message}`;
  }
  const field = fieldOf(path, 0);
  return field ? `'${field}' ${message}` : message;
}

function toRoute(
  raw: RawFile["routes"][number],
  at: string,
  env: Record<string, string | undefined>,
): NotifyRoute {
  const { webhook } = raw;
  if (webhook.secret !== undefined && webhook.secret_env !== undefined) {
    throw new NotifyConfigError(`${at}: 'webhook.secret' and 'webhook.secret_env' are exclusive`);
  }
  let secret = webhook.secret;
  if (webhook.secret_env !== undefined) {
    if (/^whsec_/i.test(webhook.secret_env)) {
      throw new NotifyConfigError(
        `${at}: 'webhook.secret_env' holds a secret (whsec_…, not quoted) instead of the name of the environment variable holding it`,
      );
    }
    secret = env[webhook.secret_env];
    // A value that looks like a secret (put here instead of the variable's name) is not echoed.
    const names = quotableEnvName(webhook.secret_env)
      ? `names ${webhook.secret_env}`
      : "names a variable (not quoted: it looks like a secret, not a variable's name)";
    if (!secret) {
      throw new NotifyConfigError(`${at}: 'webhook.secret_env' ${names}, which is not set`);
    }
    const problem = webhookSecretProblem(secret);
    if (problem) {
      throw new NotifyConfigError(`${at}: 'webhook.secret_env' ${names}, whose value ${problem}`);
    }
  }
  const retry: RetryPolicy = {
    attempts: raw.retry?.attempts ?? DEFAULT_RETRY_POLICY.attempts,
    initialMs: raw.retry?.initial ?? DEFAULT_RETRY_POLICY.initialMs,
    maxMs: raw.retry?.max ?? DEFAULT_RETRY_POLICY.maxMs,
    jitter: DEFAULT_RETRY_POLICY.jitter,
  };
  if (retry.maxMs < retry.initialMs) {
    const initial =
      raw.retry?.initial === undefined
        ? `${retry.initialMs} ms, the default when it is not set`
        : `${retry.initialMs} ms`;
    throw new NotifyConfigError(
      `${at}: 'retry.max' (${retry.maxMs} ms) must not be shorter than 'retry.initial' (${initial})`,
    );
  }
  return {
    name: raw.name,
    match: raw.match,
    webhook: { url: webhook.url, format: webhook.format, secret, timeoutMs: webhook.timeout },
    ...(raw.repeat_every === undefined ? {} : { repeatEveryMs: raw.repeat_every }),
    maxAgeMs: raw.max_age,
    retry,
    concurrency: raw.concurrency,
  };
}

/**
 * Parses the routes file's text; `env` supplies the secrets that `webhook.secret_env` names.
 * Throws a {@link NotifyConfigError} such as `route "ops" (routes[0]): 'match.min_severity' ...`.
 *
 * @example parseNotifyConfig('{"routes": [{"name": "ops", "webhook": {"url": "https://x"}}]}', {});
 */
export function parseNotifyConfig(
  text: string,
  env: Record<string, string | undefined> = {},
): NotifyConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new NotifyConfigError(`not JSON: ${(error as Error).message}`);
  }
  const result = v.safeParse(fileSchema, raw);
  if (!result.success) {
    throw new NotifyConfigError(result.issues.map((i) => describeIssue(raw, i)).join("; "));
  }
  const seen = new Map<string, number>();
  const routes = result.output.routes.map((route, i) => {
    const earlier = seen.get(route.name);
    if (earlier !== undefined) {
      throw new NotifyConfigError(`${where(raw, i)}: 'name' is used by routes[${earlier}] too`);
    }
    seen.set(route.name, i);
    return toRoute(route, where(raw, i), env);
  });
  const consoleUrl = result.output.console_url?.replace(/\/+$/, "");
  return { routes, ...(consoleUrl ? { consoleUrl } : {}) };
}

/** Reads and parses the file at `path`; every failure is a {@link NotifyConfigError} naming it. */
export async function loadNotifyConfig(
  path: string,
  env: Record<string, string | undefined>,
): Promise<NotifyConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new NotifyConfigError(`NOTIFY_CONFIG ${path}: ${(error as Error).message}`);
  }
  try {
    return parseNotifyConfig(text, env);
  } catch (error) {
    if (!(error instanceof NotifyConfigError)) throw error;
    throw new NotifyConfigError(`NOTIFY_CONFIG ${path}: ${error.message}`);
  }
}
