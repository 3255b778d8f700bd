// The dynamic batcher: drains the queue into windows, scores up to a batch at a time, off the request path.
import {
  context,
  type Link,
  type SpanContext,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { rankFlagged } from "../alert/flagged_sensors.ts";
import type { ScoringModel } from "../infer/load_model.ts";
import type { FrameQueue } from "../queue/frame_queue.ts";
import type { StreamWindows } from "../window/stream_windows.ts";

/** A scored batch, valid only during the `onBatch` call (its buffers are reused). */
export interface ScoredBatch {
  size: number;
  /** `[size, n_features]` scores, row-major (longer than needed: read `size` rows). */
  scores: Float32Array;
  /** `[size, n_features]` severities, when the model has that output. */
  severity: Float32Array | undefined;
  /** `[size, n_features]` statistic indices, when the model has that output. */
  statistic: Int32Array | undefined;
  /**
   * Row `r`'s flagged sensors are `flagged[flaggedFrom[r] .. flaggedFrom[r + 1])`, the
   * `maxFeatures` most severe first, by descending severity; the window of raw readings of its `j`-th (`j < maxFeatures`) is
   * `windows[(evidenceFrom[r] + j) * window_size ..][0 .. window_size)`, oldest first. Only
   * flagged sensors' windows are kept: never a copy of the whole batch. For a sensor with a
   * running level (model `baseline`) the window holds its readings as they arrived (not what
   * the model saw), and `levels[evidenceFrom[r] + j]` the level its newest reading was judged
   * against (NaN for the other sensors).
   */
  flagged: Int32Array;
  flaggedFrom: Uint32Array;
  evidenceFrom: Uint32Array;
  windows: Float32Array;
  levels: Float32Array;
  /** Per row: the newest frame of the window. */
  streamIds: readonly string[];
  timestamps: Float64Array;
  receivedAt: Float64Array;
  spans: readonly (SpanContext | undefined)[];
  /** ONNX Runtime time for the batch, and `performance.now()` when it completed. */
  inferenceMs: number;
  completedAt: number;
}

export interface BatcherOptions {
  queue: FrameQueue;
  windows: StreamWindows;
  model: ScoringModel;
  /** Windows per inference at most (`INFERENCE_BATCH_SIZE`). */
  maxBatch: number;
  /** Longest wait for more windows once one is ready (`BATCH_MAX_DELAY_MS`). */
  maxDelayMs: number;
  /** Which sensors count as flagged, and how many of a window keep their raw readings. */
  flag: { threshold: number; maxFeatures: number; severityScale: number };
  /** Called after each inference; the batcher waits for it before reusing its buffers. */
  onBatch: (batch: ScoredBatch) => void | Promise<void>;
  /** Called when an inference fails; the batch's frames are dropped from scoring, not retried. */
  onError: (error: Error, size: number) => void;
  tracer?: Tracer;
}

/**
 * One loop, one inference at a time. It takes every committed frame in order, appends it to its
 * stream's window (releasing the slab at once) and collects ready windows into a batch of up to
 * `maxBatch`. The batch ends when it is full or no further frame arrives within `maxDelayMs`: at
 * 1 frame/s a frame is scored within milliseconds, while a burst (frames that queued up during
 * the previous inference) is scored in batches of up to `maxBatch`. Request handlers only commit
 * and wake it; they never wait on it.
 *
 * The windows themselves pass through a tensor of only `model.windowsPerRun` windows (ONNX
 * Runtime's run size, 8): each time it fills it is scored into the batch's rows while the batch
 * goes on collecting, so a batch of 64 never holds a 32 MB `[64, window, features]` copy, and
 * inference starts before the batch is complete.
 */
export class Batcher {
  readonly #o: BatcherOptions;
  readonly #input: Float32Array;
  readonly #output: Float32Array;
  readonly #severity: Float32Array | undefined;
  readonly #statistic: Int32Array | undefined;
  #flagged = new Int32Array(0);
  readonly #flaggedFrom: Uint32Array;
  readonly #evidenceFrom: Uint32Array;
  #windows = new Float32Array(0);
  #evidenceLevels = new Float32Array(0);
  /** The baseline sensors' readings of the windows in `#input` (`[run, window, baseline sensors]`). */
  readonly #raw: Float32Array;
  readonly #windowValues: number;
  readonly #runSize: number;
  /** Windows in `#input` not scored yet, and the batch row the first of them belongs to. */
  #pending = 0;
  #pendingFrom = 0;
  #inferenceMs = 0;
  /** Epoch ms when the batch's first run started (the batch span's start). */
  #firstRunAt = 0;
  /** The batch's first inference failure: its later runs are skipped, the batch is dropped. */
  #failure: Error | undefined;
  readonly #streamIds: string[];
  readonly #timestamps: Float64Array;
  readonly #receivedAt: Float64Array;
  readonly #spans: (SpanContext | undefined)[];
  readonly #stop = new AbortController();
  readonly #tracer: Tracer;
  #busy = false;
  #loop: Promise<void> | undefined;

  constructor(options: BatcherOptions) {
    const { maxBatch, maxDelayMs, windows } = options;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) {
      throw new RangeError(`'INFERENCE_BATCH_SIZE' must be an integer 1..4096, got ${maxBatch}`);
    }
    if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) {
      throw new RangeError(`'BATCH_MAX_DELAY_MS' must be >= 0, got ${maxDelayMs}`);
    }
    this.#o = options;
    this.#windowValues = windows.windowSize * windows.frameSize;
    this.#runSize = Math.max(1, Math.min(maxBatch, options.model.windowsPerRun));
    this.#input = new Float32Array(this.#runSize * this.#windowValues);
    this.#raw = new Float32Array(this.#runSize * windows.windowSize * windows.baselineSize);
    this.#output = new Float32Array(maxBatch * windows.frameSize);
    const { outputs } = options.model;
    if (outputs.severity) this.#severity = new Float32Array(maxBatch * windows.frameSize);
    if (outputs.statistic) this.#statistic = new Int32Array(maxBatch * windows.frameSize);
    this.#flaggedFrom = new Uint32Array(maxBatch + 1);
    this.#evidenceFrom = new Uint32Array(maxBatch + 1);
    this.#streamIds = new Array<string>(maxBatch).fill("");
    this.#timestamps = new Float64Array(maxBatch);
    this.#receivedAt = new Float64Array(maxBatch);
    this.#spans = new Array<SpanContext | undefined>(maxBatch).fill(undefined);
    this.#tracer = options.tracer ?? trace.getTracer("engine");
  }

  /** True while frames are taken, scored or handed to `onBatch`. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Starts the loop (idempotent). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops after the batch in progress; frames still queued stay unscored. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { queue } = this.#o;
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      await queue.waitForFrames(stop);
      if (stop.aborted) break;
      this.#busy = true;
      try {
        this.#pending = 0;
        this.#pendingFrom = 0;
        this.#inferenceMs = 0;
        this.#firstRunAt = 0;
        this.#failure = undefined;
        const size = await this.#collect();
        if (size > 0) await this.#score(size);
      } catch (error) {
        // A bug here must not stop scoring for good: report it and carry on with the next frames.
        this.#o.onError(error instanceof Error ? error : new Error(String(error)), 0);
      } finally {
        this.#busy = false;
      }
    }
  }

  /** Moves frames from the queue into windows until the batch is full or the delay passes. */
  async #collect(): Promise<number> {
    const { queue, windows, maxBatch, maxDelayMs } = this.#o;
    let size = 0;
    let deadline = 0;
    for (;;) {
      while (size < maxBatch) {
        const slot = queue.take();
        if (slot < 0) break;
        const into = this.#input.subarray(
          this.#pending * this.#windowValues,
          (this.#pending + 1) * this.#windowValues,
        );
        const stream = queue.streamId(slot);
        const nl = windows.windowSize * windows.baselineSize;
        const raw = this.#raw.subarray(this.#pending * nl, (this.#pending + 1) * nl);
        const ready = windows.push(stream, queue.slab(slot), into, raw);
        if (ready) {
          this.#streamIds[size] = stream;
          this.#timestamps[size] = queue.timestamp(slot);
          this.#receivedAt[size] = queue.receivedAt(slot);
          this.#spans[size] = queue.span(slot);
          size++;
          this.#pending++;
        }
        queue.release(slot);
        if (this.#pending === this.#runSize) {
          await this.#scorePending();
          if (this.#failure) return size;
        }
      }
      if (size === 0 || size >= maxBatch || maxDelayMs === 0) return size;
      deadline ||= performance.now() + maxDelayMs;
      const remaining = deadline - performance.now();
      if (remaining <= 0 || this.#stop.signal.aborted) return size;
      await queue.waitForFrames(
        AbortSignal.any([this.#stop.signal, AbortSignal.timeout(Math.ceil(remaining))]),
      );
      if (queue.depth === 0) return size;
    }
  }

  /** Scores the windows waiting in `#input` into their batch rows of `#output`. */
  async #scorePending(): Promise<void> {
    const n = this.#pending;
    if (n === 0) return;
    const { frameSize } = this.#o.windows;
    const from = this.#pendingFrom;
    this.#pending = 0;
    this.#pendingFrom = from + n;
    if (this.#failure) return;
    this.#firstRunAt ||= performance.timeOrigin + performance.now();
    const started = performance.now();
    const rows = <T extends Float32Array | Int32Array>(a: T | undefined) =>
      a?.subarray(from * frameSize, (from + n) * frameSize) as T | undefined;
    try {
      await this.#o.model.score(this.#input, n, rows(this.#output)!, {
        severity: rows(this.#severity),
        statistic: rows(this.#statistic),
      });
    } catch (error) {
      this.#failure = error instanceof Error ? error : new Error(String(error));
    } finally {
      this.#inferenceMs += performance.now() - started;
    }
    if (!this.#failure) this.#keepFlagged(from, n);
  }

  /**
   * Notes the flagged sensors of rows `from .. from + n` and copies the windows of the most
   * severe ones out of `#input` before the next run overwrites it. The buffers grow to the
   * largest batch seen and are reused.
   */
  #keepFlagged(from: number, n: number): void {
    const { frameSize: F, windowSize: W, baselineSize: nb } = this.#o.windows;
    const { threshold, maxFeatures, severityScale } = this.#o.flag;
    for (let k = 0; k < n; k++) {
      const r = from + k;
      const at = this.#flaggedFrom[r];
      if (this.#flagged.length < at + F) this.#flagged = grow(this.#flagged, at + F);
      const row = {
        scores: this.#output.subarray(r * F, (r + 1) * F),
        severity: this.#severity?.subarray(r * F, (r + 1) * F),
      };
      const count = rankFlagged(row, F, threshold, severityScale, this.#flagged, at, maxFeatures);
      this.#flaggedFrom[r + 1] = at + count;
      const listed = Math.min(count, maxFeatures);
      const ev = this.#evidenceFrom[r];
      this.#evidenceFrom[r + 1] = ev + listed;
      if (listed === 0) continue;
      if (this.#windows.length < (ev + listed) * W) {
        this.#windows = grow(this.#windows, (ev + listed) * W);
      }
      if (this.#evidenceLevels.length < ev + listed) {
        this.#evidenceLevels = grow(this.#evidenceLevels, ev + listed);
      }
      keepEvidence(
        this.#o.windows,
        this.#input.subarray(k * W * F),
        this.#raw.subarray(k * W * nb),
        this.#flagged.subarray(at, at + listed),
        this.#windows.subarray(ev * W),
        this.#evidenceLevels.subarray(ev),
      );
    }
  }

  async #score(size: number): Promise<void> {
    const { model, windows } = this.#o;
    const links: Link[] = [];
    for (let i = 0; i < size; i++) {
      const context = this.#spans[i];
      if (context) links.push({ context });
    }
    await this.#scorePending();
    const span = this.#tracer.startSpan("inference batch", {
      startTime: this.#firstRunAt || undefined,
      links,
      attributes: {
        "engine.batch.size": size,
        "engine.window.size": windows.windowSize,
        "engine.model.features": windows.frameSize,
        "engine.execution_provider": model.provider,
        "engine.model.version": model.metadata.version,
      },
    });
    const err = this.#failure;
    if (err) {
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
      this.#o.onError(err, size);
      return;
    }
    const completedAt = performance.now();
    const inferenceMs = this.#inferenceMs;
    span.setAttribute("engine.inference.ms", inferenceMs);
    const batch: ScoredBatch = {
      size,
      scores: this.#output,
      severity: this.#severity,
      statistic: this.#statistic,
      flagged: this.#flagged,
      flaggedFrom: this.#flaggedFrom,
      evidenceFrom: this.#evidenceFrom,
      windows: this.#windows,
      levels: this.#evidenceLevels,
      streamIds: this.#streamIds,
      timestamps: this.#timestamps,
      receivedAt: this.#receivedAt,
      spans: this.#spans,
      inferenceMs,
      completedAt,
    };
    // Inside the span, so the batch's log line and alert hand-off carry its trace id.
    try {
      await context.with(trace.setSpan(context.active(), span), () => this.#o.onBatch(batch));
    } finally {
      span.end();
    }
  }
}

/**
 * Copies the windows of `sensors` out of one scored window `input` (`[window, features]`) into
 * `windows` (`window` values each, oldest first) as the readings arrived: for a sensor with a
 * running level the model saw reading - level, so its readings come from `raw` (`[window,
 * baseline sensors]`, as `StreamWindows.push` wrote them), and the level its newest reading was
 * judged against goes to `levelsOut` (NaN for the other sensors).
 */
export function keepEvidence(
  shape: Pick<StreamWindows, "frameSize" | "windowSize" | "baselineSize" | "baselineIndex">,
  input: Float32Array,
  raw: Float32Array,
  sensors: Int32Array,
  windows: Float32Array,
  levelsOut: Float32Array,
): void {
  const { frameSize: F, windowSize: W, baselineSize: nb, baselineIndex } = shape;
  for (let j = 0; j < sensors.length; j++) {
    const f = sensors[j];
    const to = j * W;
    for (let t = 0; t < W; t++) windows[to + t] = input[t * F + f];
    const i = nb > 0 ? baselineIndex[f] : -1;
    levelsOut[j] = Number.NaN;
    if (i < 0) continue;
    for (let t = 0; t < W; t++) windows[to + t] = raw[t * nb + i];
    levelsOut[j] = raw[(W - 1) * nb + i] - input[(W - 1) * F + f];
  }
}

/** A larger copy of `a` (at least `need` long, doubling), keeping its contents. */
function grow<T extends Int32Array | Float32Array>(a: T, need: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, 2 * a.length, 1024));
  b.set(a);
  return b;
}
