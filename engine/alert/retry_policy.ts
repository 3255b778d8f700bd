// When and how long to wait before another alert delivery attempt: the policy as data.

/** Statuses worth another attempt; every other 4xx means the request itself is wrong. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([
  408, // Request Timeout: the backend gave up waiting for our body; a resend can succeed
  425, // Too Early: the backend asks for a replay later
  429, // Too Many Requests: back off (honouring Retry-After) and resend
  500, // Internal Server Error: often transient (a failed database call)
  502, // Bad Gateway: a proxy could not reach the backend (restarting)
  503, // Service Unavailable: backend not ready or draining
  504, // Gateway Timeout: a proxy timed out on the backend
]);

/** Whether an HTTP status is worth retrying: the set above plus any other 5xx. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status) || (status >= 500 && status <= 599);
}

/**
 * Exponential backoff with full jitter: a uniform wait in `[0, min(maxMs, baseMs * 2^attempt))`.
 * Full jitter spreads retries of many engines evenly instead of in synchronised waves.
 *
 * @example backoffDelay(0, 200, 10_000) // somewhere in [0, 200)
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Milliseconds a `Retry-After` header asks for (delta seconds or an HTTP date), or undefined
 * when absent or unreadable. A past date means "now" (0).
 */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
