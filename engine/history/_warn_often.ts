// A warning about something that can happen on every batch, said at most once a minute with how often it happened.

/** How long a rate-limited warning stays quiet after it is said. */
export const WARN_EVERY_MS = 60_000;

/**
 * Returns `note(count, fields)`: the first call says `message` at once, later ones only
 * once `everyMs` (of `now`) passed since it was last said; each saying carries `count`, the
 * sum of the counts noted since the one before, so nothing is hidden by the quiet time.
 *
 * @example
 * const dropped = warnOften(log, "streams dropped", "streams", Date.now);
 * dropped(1, { model: "pump" });
 */
export function warnOften(
  warn: ((message: string, fields?: Record<string, unknown>) => void) | undefined,
  message: string,
  countAs: string,
  now: () => number,
  everyMs = WARN_EVERY_MS,
): (count: number, fields: Record<string, unknown>) => void {
  let saidAt = Number.NEGATIVE_INFINITY;
  let unsaid = 0;
  return function noteWarning(count, fields) {
    unsaid += count;
    const at = now();
    if (at - saidAt < everyMs) return;
    warn?.(message, { ...fields, [countAs]: unsaid });
    saidAt = at;
    unsaid = 0;
  };
}
