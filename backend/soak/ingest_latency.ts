// The soak's ingest latency: how long the backend took to answer each alert POST, split by whether a prune was running.
import type { MiddlewareHandler } from "hono";

export interface LatencySummary {
  n: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function summarise(ms: number[]): LatencySummary {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  return {
    n: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted.at(-1) ?? null),
  };
}

/**
 * A middleware timing every `POST` through it; a request counts as "while pruning" when a prune
 * was running as it arrived or as it was answered.
 */
export function ingestLatency(pruning: () => boolean) {
  const idle: number[] = [];
  const busy: number[] = [];
  const middleware: MiddlewareHandler = async function timeIngest(c, next) {
    if (c.req.method !== "POST") return next();
    const during = pruning();
    const t0 = performance.now();
    await next();
    (during || pruning() ? busy : idle).push(performance.now() - t0);
  };
  return {
    middleware,
    summary: () => ({ idle: summarise(idle), while_pruning: summarise(busy) }),
  };
}
