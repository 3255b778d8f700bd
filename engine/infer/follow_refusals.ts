// Which versions a registry pointer follower gave up on, and when it tries a failed one again.

/**
 * Answers that stay true however often they are asked: the version does not exist, its entry is
 * broken, or it cannot replace the served one. Anything else (a request that timed out, a file
 * read or a model load that failed, an activation already under way) may pass the next time.
 */
const DEFINITIVE = new Set([
  "model_not_found",
  "version_not_found",
  "invalid_version",
  "invalid_model_name",
  "registry_entry_invalid",
  "model_incompatible",
]);

/** Whether `error` is an answer that asking again would not change. */
export function definitiveRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && DEFINITIVE.has(code);
}

/** First wait before a version that failed for another reason is tried again; it doubles. */
export const FOLLOW_RETRY_FIRST_MS = 2_000;
/** Longest wait between two tries of the same version. */
export const FOLLOW_RETRY_MAX_MS = 300_000;

/**
 * A follower's memory of the versions it could not switch to, by key (`name@version`): refused
 * for good on a {@link definitiveRefusal}, otherwise tried again after a delay that doubles from
 * {@link FOLLOW_RETRY_FIRST_MS} to {@link FOLLOW_RETRY_MAX_MS}, so one timed-out request never
 * leaves a process on the previous version while the others serve the new one.
 *
 * @example if (!refusals.skip(key)) try { await follow(); refusals.succeeded(key) } catch (e) { refusals.failed(key, e) }
 */
export class FollowRefusals {
  readonly #refused = new Set<string>();
  readonly #retry = new Map<string, { at: number; attempts: number }>();
  /** The last failure of each key not followed yet, said as its error's message. */
  readonly #why = new Map<string, string>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Whether `key` is not to be tried now: refused for good, or its next try is not due. */
  skip(key: string): boolean {
    if (this.#refused.has(key)) return true;
    const retry = this.#retry.get(key);
    return retry !== undefined && this.#now() < retry.at;
  }

  /**
   * Records a failed try of `key`. Returns the wait before the next try, or `undefined` when
   * the version is refused for good.
   */
  failed(key: string, error: unknown): number | undefined {
    this.#why.set(key, error instanceof Error ? error.message : String(error));
    if (definitiveRefusal(error)) {
      this.#refused.add(key);
      this.#retry.delete(key);
      return undefined;
    }
    const attempts = (this.#retry.get(key)?.attempts ?? 0) + 1;
    const wait = Math.min(FOLLOW_RETRY_MAX_MS, FOLLOW_RETRY_FIRST_MS * 2 ** (attempts - 1));
    this.#retry.set(key, { at: this.#now() + wait, attempts });
    return wait;
  }

  /** Forgets the failures of `key` (it was followed). */
  succeeded(key: string): void {
    this.#retry.delete(key);
    this.#why.delete(key);
  }

  /**
   * Where following `key` stands, for `GET /models`: `refused` (for good), `retrying` (a try
   * failed; the next at `next_try_at`) or `pending` (not tried yet, or being tried).
   */
  state(key: string): FollowState {
    const error = this.#why.get(key);
    if (this.#refused.has(key)) return { following: "refused", ...(error ? { error } : {}) };
    const retry = this.#retry.get(key);
    if (retry) {
      return {
        following: "retrying",
        ...(error ? { error } : {}),
        next_try_at: new Date(retry.at).toISOString(),
      };
    }
    return { following: "pending" };
  }
}

/** {@link FollowRefusals.state}: how far a registry pointer's version is from being served. */
export type FollowState =
  | { following: "refused"; error?: string }
  | { following: "retrying"; error?: string; next_try_at: string }
  | { following: "pending" };
