// Failed sign-ins per client address: a fixed window, so guessing tokens is slow and logged.

export interface FailureLimiterOptions {
  /** Failures allowed per address per window (default 10). */
  max?: number;
  windowMs?: number;
  now?: () => number;
  /** Addresses remembered at most (oldest forgotten first), so a flood cannot grow memory. */
  maxAddresses?: number;
}

/**
 * Counts failures per key. `blockedFor(key)` is the seconds left before `key` may try again, 0
 * when it may now.
 *
 * @example const limiter = createFailureLimiter(); if (limiter.blockedFor(ip) > 0) refuse(); else if (!ok) limiter.fail(ip);
 */
export function createFailureLimiter(options: FailureLimiterOptions = {}) {
  const { max = 10, windowMs = 60_000, maxAddresses = 10_000 } = options;
  const now = options.now ?? Date.now;
  const windows = new Map<string, { start: number; failures: number }>();

  const entry = (key: string) => {
    const w = windows.get(key);
    if (w && now() - w.start < windowMs) return w;
    windows.delete(key);
    return undefined;
  };

  return {
    blockedFor(key: string): number {
      const w = entry(key);
      return w && w.failures >= max ? Math.ceil((w.start + windowMs - now()) / 1000) : 0;
    },
    /** Records a failure; returns the failures in the current window. */
    fail(key: string): number {
      const w = entry(key) ?? { start: now(), failures: 0 };
      w.failures++;
      windows.delete(key);
      windows.set(key, w);
      if (windows.size > maxAddresses) windows.delete(windows.keys().next().value as string);
      return w.failures;
    },
  };
}

export type FailureLimiter = ReturnType<typeof createFailureLimiter>;
