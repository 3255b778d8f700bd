// Durations as people write them in the notification file ("500ms", "30s", "15m", "4h", "1d").

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The pattern a duration must match: a whole number and one unit. */
export const DURATION_PATTERN = /^(\d{1,9})(ms|s|m|h|d)$/;

/**
 * Milliseconds in a duration string, or `undefined` when it is not one.
 *
 * @example parseDuration("4h"); // 14_400_000
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_PATTERN.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
