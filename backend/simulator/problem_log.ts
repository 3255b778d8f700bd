// Rate-limited warnings: a run that meets the same problem on every frame says so, not once a frame.
import type { Logger } from "../../telemetry/logger.ts";

export interface ProblemLogOptions {
  log?: Logger;
  /** Least time between two lines for the same problem (ms). */
  everyMs?: number;
  /** Monotonic milliseconds. */
  clock?: () => number;
}

// Distinct problems remembered; past it they are all forgotten (each then logs again at once).
const MAX_KEYS = 256;

/**
 * Creates `report(key, fields)`, which warns `message` with `fields` the first time `key` (an
 * engine error code, say) comes up, then at most once every `everyMs` per key, each such line
 * with `count`: the times it came up since the key's last line (1 on the first). So a change of
 * problem is logged at once, and one that persists costs a line a minute.
 *
 * @example const notDelivered = createProblemLog("frame not delivered", { log });
 * notDelivered("too_many_streams", { stream_id: "plant-2", status: 503 });
 */
export function createProblemLog(message: string, options: ProblemLogOptions = {}) {
  const { log, everyMs = 60_000, clock = () => performance.now() } = options;
  const seen = new Map<string, { loggedAt: number; count: number }>();
  return function reportProblem(key: string, fields: Record<string, unknown> = {}): void {
    const t = clock();
    let entry = seen.get(key);
    if (!entry) {
      if (seen.size >= MAX_KEYS) seen.clear();
      entry = { loggedAt: Number.NEGATIVE_INFINITY, count: 0 };
      seen.set(key, entry);
    }
    entry.count++;
    if (t - entry.loggedAt < everyMs) return;
    log?.warn(message, { ...fields, count: entry.count });
    entry.loggedAt = t;
    entry.count = 0;
  };
}
