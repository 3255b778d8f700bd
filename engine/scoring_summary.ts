// The engine's one routine log line: every 60 s, what was scored since the last one.
import type { Logger } from "../telemetry/logger.ts";
import { hasGpu, readGpu, sampleResources } from "../telemetry/resources.ts";

const round = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Counts what a role scored and logs it as one `scoring summary` line per interval (frames,
 * windows, batches, p50/p99 reception → inference, alerts, resources), instead of a line per
 * batch (86,400 a day per 1 Hz stream). Nothing is logged for an interval with no frames. The
 * per-batch line stays available at `LOG_LEVEL=debug`.
 */
export class ScoringSummary {
  readonly #log: Logger;
  readonly #fields: Record<string, unknown>;
  readonly #framesSeen: () => number;
  #framesBefore = 0;
  #latencies: number[] = [];
  #batches = 0;
  #alerts = 0;
  #inferenceMs = 0;
  #since = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * `framesSeen` counts the frames the role took in so far (a running total; a reset to a lower
   * value starts it again), `fields` are logged with every line.
   */
  constructor(log: Logger, framesSeen: () => number, fields: Record<string, unknown> = {}) {
    this.#log = log;
    this.#framesSeen = framesSeen;
    this.#fields = fields;
  }

  /** A scored batch: each window's reception → inference latency, and the alerts it made. */
  batch(latenciesMs: ArrayLike<number>, inferenceMs: number, alerts: number): void {
    this.#batches++;
    this.#inferenceMs += inferenceMs;
    this.#alerts += alerts;
    // At most a few hundred thousand an interval even when saturated: sorted once when logged.
    for (let i = 0; i < latenciesMs.length; i++) this.#latencies.push(latenciesMs[i]);
  }

  /** Logs every `everyMs` (60 s) until `stop`; the timer does not keep the process alive. */
  start(everyMs = 60_000): void {
    this.#timer ??= setInterval(() => this.#tick(), everyMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  // The GPU reading is refreshed in the background, so the sample would hold the one taken at
  // the previous line, a minute old (and none on the first): it is read first (nvidia-smi, at
  // most 2 s), then the line is written, unless the summary stopped meanwhile.
  #tick(): void {
    if (!hasGpu()) {
      this.flush();
      return;
    }
    readGpu()
      .catch(() => undefined)
      .then(() => {
        if (this.#timer) this.flush();
      });
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.flush();
  }

  /** Logs the interval so far (if anything was scored) and starts a new one. */
  flush(): void {
    const windows = this.#latencies.length;
    const seconds = (performance.now() - this.#since) / 1000;
    const seen = this.#framesSeen();
    // Below the last count, the total was reset (POST /stats/reset): all of it is this interval's.
    const frames = seen >= this.#framesBefore ? seen - this.#framesBefore : seen;
    this.#framesBefore = seen;
    if (frames > 0 || windows > 0) {
      const sorted = Float64Array.from(this.#latencies).sort();
      const at = (p: number) =>
        sorted.length
          ? round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)])
          : 0;
      this.#log.info("scoring summary", {
        ...this.#fields,
        interval_s: round(seconds),
        frames,
        windows,
        batches: this.#batches,
        inference_ms: round(this.#inferenceMs),
        latency_ms: {
          p50: at(0.5),
          p99: at(0.99),
          max: sorted.length ? round(sorted[sorted.length - 1]) : 0,
        },
        alerts: this.#alerts,
        resources: sampleResources(),
      });
    }
    this.#latencies = [];
    this.#batches = this.#alerts = this.#inferenceMs = 0;
    this.#since = performance.now();
  }
}
