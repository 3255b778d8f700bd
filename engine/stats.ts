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

/** One model's share of `GET /stats` (an entry of `models`). */
export interface ModelStats {
  name: string;
  /** Frames taken into its queue (where this role takes frames), and scored by it. */
  frames: { accepted?: number; scored: number };
  /** Its queue (where it has one of its own). */
  queue?: { depth: number; capacity: number };
  latency_ms: { count: number; p50: number; p99: number; max: number };
  inference_ms: { count: number; p50: number; p99: number };
}

/** A model's counters before it scored anything. */
export const unscoredModel = (name: string): ModelStats => ({
  name,
  frames: { scored: 0 },
  latency_ms: { count: 0, p50: 0, p99: 0, max: 0 },
  inference_ms: { count: 0, p50: 0, p99: 0 },
});

/** A served model as {@link EngineStats.snapshot} lists it: its name, and its queue if it has one. */
export interface ServedLane {
  name: string;
  queue?: { depth: number; capacity: number };
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
  /**
   * Each served model's own counters (the fields above sum them): which asset's lane is slow or
   * full. Absent where the role reports none (an ingest replica).
   */
  models?: ModelStats[];
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
  #byModel = new Map<
    string,
    { accepted: number; scored: number; latency: Samples; inference: Samples }
  >();
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

  #model(name: string) {
    let m = this.#byModel.get(name);
    if (!m) {
      m = { accepted: 0, scored: 0, latency: new Samples(), inference: new Samples() };
      this.#byModel.set(name, m);
    }
    return m;
  }

  /** A frame taken into `model`'s queue (the total is `accepted`, counted by the caller). */
  acceptedBy(model: string): void {
    this.#model(model).accepted++;
  }

  /** Reception → inference complete of one scored frame (of `model`, when named). */
  frameScored(latencyMs: number, model?: string): void {
    this.scored++;
    this.#latency.add(latencyMs);
    if (model === undefined) return;
    const m = this.#model(model);
    m.scored++;
    m.latency.add(latencyMs);
  }

  batchScored(size: number, inferenceMs: number, model?: string): void {
    this.batches++;
    this.#inference.add(inferenceMs);
    if (model !== undefined) this.#model(model).inference.add(inferenceMs);
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
    this.#byModel = new Map();
  }

  /**
   * The `GET /stats` body; with `served` (the models served, with their queues where each has
   * one), a `models` entry for each, in that order (one that scored nothing since the reset
   * shows zeros).
   */
  snapshot(
    extra: Pick<StatsSnapshot, "queue" | "alerts" | "rss_bytes"> & {
      served?: readonly ServedLane[];
    },
  ): StatsSnapshot {
    let models: ModelStats[] | undefined;
    if (extra.served) {
      models = extra.served.map(({ name, queue }) => {
        const m = this.#byModel.get(name);
        return {
          name,
          frames: queue
            ? { accepted: m?.accepted ?? 0, scored: m?.scored ?? 0 }
            : { scored: m?.scored ?? 0 },
          ...(queue ? { queue } : {}),
          latency_ms: {
            count: m?.latency.count ?? 0,
            p50: round(m?.latency.percentile(50) ?? 0),
            p99: round(m?.latency.percentile(99) ?? 0),
            max: round(m?.latency.max ?? 0),
          },
          inference_ms: {
            count: m?.inference.count ?? 0,
            p50: round(m?.inference.percentile(50) ?? 0),
            p99: round(m?.inference.percentile(99) ?? 0),
          },
        };
      });
    }
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
      ...(models ? { models } : {}),
      ...(this.decisions ? { decisions: this.decisions() } : {}),
      ...(this.evidence ? { evidence: this.evidence() } : {}),
    };
  }
}
