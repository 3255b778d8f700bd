// A time limit that also ends with other signals, kept alive by its own timer.

/**
 * A signal that aborts after `ms` (reason: a `TimeoutError`, as `AbortSignal.timeout` gives) or
 * when any of `signals` aborts (with its reason). `clear()` stops the timer and lets go of
 * `signals`: call it once the wait is over, or a long-lived signal collects one listener a call.
 *
 * Not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: Node 20 holds a timeout signal only
 * weakly, so a garbage collection before the time is up can take it, and the combined signal
 * never aborts (a batch that waited for a frame that never came was never scored). Here the
 * timer holds the controller.
 *
 * @example
 * const deadline = deadlineSignal(2000, shutdown);
 * try { await fetch(url, { signal: deadline.signal }); } finally { deadline.clear(); }
 */
export function deadlineSignal(
  ms: number,
  ...signals: (AbortSignal | undefined)[]
): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const sources = signals.filter((s): s is AbortSignal => s !== undefined);
  const clear = () => {
    clearTimeout(timer);
    for (const source of sources) source.removeEventListener("abort", follow);
  };
  function follow(this: AbortSignal) {
    clear();
    controller.abort(this.reason);
  }
  const timer = setTimeout(() => {
    clear();
    controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
  }, ms);
  // Like AbortSignal.timeout, a pending limit alone does not keep the process running.
  timer.unref?.();
  for (const source of sources) {
    if (source.aborted) {
      clear();
      controller.abort(source.reason);
      break;
    }
    source.addEventListener("abort", follow, { once: true });
  }
  return { signal: controller.signal, clear };
}
