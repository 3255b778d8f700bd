// When a failed notification is tried again: the retryable answers and the backoff, as data.

/** Answers worth another try; any other 4xx means the request itself is wrong, so it is dead at once. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([
  408, // request timeout: the receiver gave up waiting for us
  425, // too early: a replay guard asks for a later try
  429, // rate limited: wait at least Retry-After
  500, // the receiver failed; it may not next time
  502, // a proxy in front of the receiver could not reach it
  503, // the receiver is down or overloaded (Retry-After honoured)
  504, // a proxy timed out waiting for the receiver
]);

/** How many tries a message gets and how long to wait between them. */
export interface RetryPolicy {
  /** Tries in all, the first included; after the last failed one the message is a dead letter. */
  attempts: number;
  /** Wait after the first failure; doubled after each further one. */
  initialMs: number;
  /** Longest wait between two tries. */
  maxMs: number;
  /** Share of each wait taken off at random (0..1), so many failed messages do not retry in step. */
  jitter: number;
}

/**
 * Ten tries, the last 58 to 72 minutes after the first (the jitter takes up to a fifth off each
 * wait): long enough to ride out a receiver's restart, deploy or short outage, short enough that
 * a message nobody can deliver shows as a dead letter the same hour, not one hours stale.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 10,
  initialMs: 10_000,
  maxMs: 30 * 60_000,
  jitter: 0.2,
};

/**
 * The wait after `failures` failed tries (1 for the first), at least `retryAfterMs` when the
 * receiver asked for it, never beyond `maxMs`.
 *
 * @example backoffMs({ attempts: 5, initialMs: 100, maxMs: 1000, jitter: 0 }, 3); // 400
 */
export function backoffMs(
  policy: RetryPolicy,
  failures: number,
  retryAfterMs = 0,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, failures - 1));
  const jittered = Math.round(exponential * (1 - policy.jitter * random()));
  return Math.min(policy.maxMs, Math.max(jittered, retryAfterMs));
}
