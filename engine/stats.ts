// Counters and latency samples behind `GET /stats` (read by `npm run bench`), reset by `POST /stats/reset`.

// Enough for any benchmark run; beyond it the oldest samples are overwritten (recent window).
const MAX_SAMPLES = 1 << 20;

/** A growable sample buffer that wraps around at MAX_SAMPLES. */
class Samples {
  #values = new Float64Array(1024);
  #count = 0;

  add(value: number): void {
    if (this.#count < MAX_SAMPLES && this.#count === this.#values.length) {
      const grown = new Float64Array(Math.min(MAX_SAMPLES, this.#values.length * 2));
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count % MAX_SAMPLES] = value;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  /** Sorted copy of the samples held. */
  sorted(): Float64Array {
    return this.#values.slice(0, Math.min(this.#count, MAX_SAMPLES)).sort();
  }

  clear(): void {
    this.#count = 0;
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** Nearest-rank percentile of sorted values (0 when empty). */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
}

/** The `GET /stats` body. */
export interface StatsSnapshot {
  frames: { accepted: number; rejected: number; duplicate: number; scored: number };
  batches: number;
  queue: { depth: number; capacity: number };
  latency_ms: { count: number; p50: number; p90: number; p99: number; max: number };
  inference_ms: { count: number; p50: number; p99: number; by_batch_size: Record<string, number> };
  alerts: { generated: number; delivered: number; outbox: number };
  rss_bytes: number;
}

/**
 * Engine counters since start or the last reset. Recording is O(1) and allocation-free in the
 * steady state; percentiles are computed when read.
 */
export class EngineStats {
  accepted = 0;
  rejected = 0;
  duplicate = 0;
  scored = 0;
  batches = 0;
  readonly #latency = new Samples();
  readonly #inference = new Samples();
  #bySize = new Map<number, { total: number; count: number }>();

  /** Reception → inference complete of one scored frame. */
  frameScored(latencyMs: number): void {
    this.scored++;
    this.#latency.add(latencyMs);
  }

  batchScored(size: number, inferenceMs: number): void {
    this.batches++;
    this.#inference.add(inferenceMs);
    const entry = this.#bySize.get(size);
    if (entry) {
      entry.total += inferenceMs;
      entry.count++;
    } else this.#bySize.set(size, { total: inferenceMs, count: 1 });
  }

  reset(): void {
    this.accepted = this.rejected = this.duplicate = this.scored = this.batches = 0;
    this.#latency.clear();
    this.#inference.clear();
    this.#bySize = new Map();
  }

  snapshot(extra: Pick<StatsSnapshot, "queue" | "alerts" | "rss_bytes">): StatsSnapshot {
    const latency = this.#latency.sorted();
    const inference = this.#inference.sorted();
    const bySize: Record<string, number> = {};
    for (const [size, { total, count }] of [...this.#bySize].sort((a, b) => a[0] - b[0])) {
      bySize[String(size)] = round(total / count);
    }
    return {
      frames: {
        accepted: this.accepted,
        rejected: this.rejected,
        duplicate: this.duplicate,
        scored: this.scored,
      },
      batches: this.batches,
      queue: extra.queue,
      latency_ms: {
        count: this.#latency.count,
        p50: percentile(latency, 50),
        p90: percentile(latency, 90),
        p99: percentile(latency, 99),
        max: latency.length ? round(latency[latency.length - 1]) : 0,
      },
      inference_ms: {
        count: this.#inference.count,
        p50: percentile(inference, 50),
        p99: percentile(inference, 99),
        by_batch_size: bySize,
      },
      alerts: extra.alerts,
      rss_bytes: extra.rss_bytes,
    };
  }
}
