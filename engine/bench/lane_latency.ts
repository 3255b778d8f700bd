// Reception → inference latency per model, from the engine's `batch scored` debug lines (`/stats` sums the models).
import { open } from "node:fs/promises";

/** One model's frames scored in a stretch of log, and their reception → inference latency. */
export interface LaneLatency {
  /** Windows scored (one per frame that completed a window). */
  scored: number;
  /** Windows scored per stream. */
  streams: Record<string, number>;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /**
   * Per batch, the time its runs took, from the first to the last: with several models this
   * includes waiting for the other models' turns (engine/infer/fair_turns.ts).
   */
  batches: number;
  inference_ms: { p50: number; p99: number };
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** Nearest-rank percentile of sorted values (0 when empty), as `/stats` computes it. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
}

interface BatchLine {
  msg?: string;
  model?: string;
  inference_ms?: number;
  frames?: { stream_id: string; latency_ms: number }[];
}

/**
 * Groups the `batch scored` lines of `LOG_LEVEL=debug` JSON-lines text by model; other lines are
 * skipped.
 *
 * @example laneLatencies(await cursor.next()).packaging?.p99
 */
export function laneLatencies(text: string): Record<string, LaneLatency> {
  const samples = new Map<
    string,
    { latencies: number[]; inference: number[]; streams: Record<string, number> }
  >();
  for (const line of text.split("\n")) {
    // Cheap test first: most lines of a busy engine are batches, but not all.
    if (!line.includes('"batch scored"')) continue;
    const batch = JSON.parse(line) as BatchLine;
    if (batch.msg !== "batch scored" || !batch.model || !batch.frames) continue;
    let lane = samples.get(batch.model);
    if (!lane) {
      lane = { latencies: [], inference: [], streams: {} };
      samples.set(batch.model, lane);
    }
    lane.inference.push(batch.inference_ms ?? 0);
    for (const frame of batch.frames) {
      lane.latencies.push(frame.latency_ms);
      lane.streams[frame.stream_id] = (lane.streams[frame.stream_id] ?? 0) + 1;
    }
  }
  const out: Record<string, LaneLatency> = {};
  for (const [model, { latencies, inference, streams }] of samples) {
    const sorted = Float64Array.from(latencies).sort();
    const runs = Float64Array.from(inference).sort();
    out[model] = {
      scored: sorted.length,
      streams,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: round(sorted[sorted.length - 1]),
      batches: runs.length,
      inference_ms: { p50: percentile(runs, 50), p99: percentile(runs, 99) },
    };
  }
  return out;
}

/** Reads a growing log file piece by piece: each {@link next} gives the whole lines written since the last. */
export class LogCursor {
  readonly #path: string;
  #offset = 0;

  constructor(path: string) {
    this.#path = path;
  }

  /** The complete lines appended since the previous call (a partial last line waits for the next). */
  async next(): Promise<string> {
    const file = await open(this.#path, "r");
    try {
      const { size } = await file.stat();
      const bytes = Buffer.alloc(size - this.#offset);
      const { bytesRead } = await file.read(bytes, 0, bytes.length, this.#offset);
      const end = bytes.subarray(0, bytesRead).lastIndexOf(0x0a) + 1;
      this.#offset += end;
      return bytes.subarray(0, end).toString("utf8");
    } finally {
      await file.close();
    }
  }
}
