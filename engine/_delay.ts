// An abortable pause, for backoff between attempts (resolves early, never rejects, on abort).

/**
 * Waits `ms` milliseconds, or less when `signal` aborts; resolves to false when it was cut short.
 * Timers are unref'd where the runtime allows so a pending backoff never keeps a process alive.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
