// Counters and latency samples behind `GET /stats` (read by `npm run bench`), reset by `POST /stats/reset`.
import type { DecisionsReport } from "./decisions/decisions_client.ts";
import type { HistoryReport } from "./evidence/history_store.ts";

// Latency samples are counted in a log-linear histogram of whole microseconds (HdrHistogram's
// layout): 1,024 buckets per power of two, so a percentile is exact below 2,048 µs and within
// 1/1,024 (0.1 %) above, up to 2^32 µs (71 minutes). Recording is O(1); a read scans the fixed
// 23,552 buckets, however many samples there are: GET /stats never sorts samples, and every
// sample since the last reset counts.
const SUB_BUCKET_BITS = 11;
const HALF_SUB_BUCKETS = 1 << (SUB_BUCKET_BITS - 1);
const MAX_MICROS = 2 ** 32 - 1;
const BUCKETS = (32 - SUB_BUCKET_BITS + 1) * HALF_SUB_BUCKETS + HALF_SUB_BUCKETS;

/** The bucket of `micros` (an integer in 0..MAX_MICROS). */
function bucketOf(micros: number): number {
  const shift = Math.max(0, 32 - Math.clz32(micros) - SUB_BUCKET_BITS);
  return shift * HALF_SUB_BUCKETS + (micros >>> shift);
}

/** The highest value (µs) that falls in `bucket`, so a percentile never understates. */
function highestIn(bucket: number): number {
  if (bucket < 2 * HALF_SUB_BUCKETS) return bucket;
  const shift = Math.floor(bucket / HALF_SUB_BUCKETS) - 1;
  const sub = bucket - shift * HALF_SUB_BUCKETS;
  return (sub + 1) * 2 ** shift - 1;
}

/** Millisecond samples as a fixed-size histogram (see above), with the exact maximum. */
class Samples {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;

  add(ms: number): void {
    if (Number.isNaN(ms)) return;
    const micros = Math.min(MAX_MICROS, Math.max(0, Math.round(ms * 1000)));
    this.#counts[bucketOf(micros)]++;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  get count(): number {
    return this.#count;
  }

  /** The largest sample, exactly (0 when empty). */
  get max(): number {
    return this.#max;
  }

  /** Nearest-rank percentile (ms, 0 when empty), at most the largest sample. */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.#counts[bucket];
      if (seen >= rank) return Math.min(this.#max, highestIn(bucket) / 1000);
    }
    return this.#max;
  }

  clear(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#max = 0;
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** A count since start less its value at the last reset (below it: a new alert path, all new). */
const since = (total: number, atReset: number) => (total >= atReset ? total - atReset : total);

/** The `alerts` block of `GET /stats`. */
export interface AlertsStats {
  generated: number;
  delivered: number;
  outbox: number;
  /**
   * Alerts made and not kept yet: their incident state could not be saved (or the outbox took
   * none), held in memory and retried; lost if the engine stops before that works. Absent where
   * the role does not report it.
   */
  held?: number;
  /** Why alerts are held: the last error keeping them. Present only while keeping fails. */
  held_reason?: string;
}

/** The `GET /stats` body. */
export interface StatsSnapshot {
  frames: { accepted: number; rejected: number; duplicate: number; scored: number };
  batches: number;
  queue: { depth: number; capacity: number };
  latency_ms: { count: number; p50: number; p90: number; p99: number; max: number };
  inference_ms: { count: number; p50: number; p99: number; by_batch_size: Record<string, number> };
  alerts: AlertsStats;
  rss_bytes: number;
  /** The copy of operators' decisions (silences, verdicts) in use; absent while the client is off. */
  decisions?: DecisionsReport;
  /**
   * The incident history budget, every model's summed: `ringless` frames came from streams the
   * budget had no ring for (their alerts carry no history); absent where nothing reports it.
   */
  evidence?: HistoryReport;
}

/**
 * Engine counters since start or the last reset. Recording is O(1) and allocation-free;
 * percentiles are read from fixed-size histograms (exact below 2 ms, within 0.1 % above) that
 * hold every sample since start or the last reset.
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
  /** Where the decisions copy stands (`DecisionsClient.report`), when the engine pulls one. */
  decisions: (() => DecisionsReport) | undefined;
  /** Where the history budget stands (`historyReport` of the serving models' stores). */
  evidence: (() => HistoryReport) | undefined;
  /**
   * The alert path's counts since start (`AlertDispatcher.counts`): `alerts` in a snapshot counts
   * from the last reset, as every other counter does.
   */
  alertCounts: (() => { generated: number; delivered: number } | undefined) | undefined;
  #alertsAtReset = { generated: 0, delivered: 0 };
  #acceptedBefore = 0;

  /** Frames accepted since start, whatever resets happened (the 60 s summary counts on it). */
  get acceptedSinceStart(): number {
    return this.#acceptedBefore + this.accepted;
  }

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
    this.#acceptedBefore += this.accepted;
    const alerts = this.alertCounts?.();
    this.#alertsAtReset = { generated: alerts?.generated ?? 0, delivered: alerts?.delivered ?? 0 };
    this.accepted = this.rejected = this.duplicate = this.scored = this.batches = 0;
    this.#latency.clear();
    this.#inference.clear();
    this.#bySize = new Map();
  }

  snapshot(extra: Pick<StatsSnapshot, "queue" | "alerts" | "rss_bytes">): StatsSnapshot {
    const latency = this.#latency;
    const inference = this.#inference;
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
        count: latency.count,
        p50: round(latency.percentile(50)),
        p90: round(latency.percentile(90)),
        p99: round(latency.percentile(99)),
        max: round(latency.max),
      },
      inference_ms: {
        count: inference.count,
        p50: round(inference.percentile(50)),
        p99: round(inference.percentile(99)),
        by_batch_size: bySize,
      },
      alerts: {
        ...extra.alerts,
        generated: since(extra.alerts.generated, this.#alertsAtReset.generated),
        delivered: since(extra.alerts.delivered, this.#alertsAtReset.delivered),
      },
      rss_bytes: extra.rss_bytes,
      ...(this.decisions ? { decisions: this.decisions() } : {}),
      ...(this.evidence ? { evidence: this.evidence() } : {}),
    };
  }
}
