// The dynamic batcher: drains the in-memory queue into windows and drives the window scorer, off the request path.

import { context, type Link, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { deadlineSignal } from "../../contracts/deadline.ts";
import type { HistoryStore } from "../evidence/history_store.ts";
import type { FrameQueue } from "../queue/frame_queue.ts";
import { confirmsStop, joinsWindow, type MachineStates } from "../window/machine_states.ts";
import type { StreamWindows } from "../window/stream_windows.ts";
import type { ScoredBatch, WindowScorer } from "./window_scorer.ts";

export interface BatcherOptions {
  queue: FrameQueue;
  windows: StreamWindows;
  /** Scores the windows (its `maxBatch` is `INFERENCE_BATCH_SIZE`). */
  scorer: WindowScorer;
  /** Longest wait for more windows once one is ready (`BATCH_MAX_DELAY_MS`). */
  maxDelayMs: number;
  /**
   * Called after each inference with the machine stops met while its windows were collected,
   * in frame order (hand rows `0 .. stops[0].row` to the alert path, then the first stop, and
   * so on); the batcher waits for it before reusing its buffers. `by` is what scored it: after
   * a swap the lane's parts are the new version's while the old one still scores its last batch.
   */
  onBatch: (
    batch: ScoredBatch,
    stops: readonly MachineStop[],
    by: { model: WindowScorer["model"]; history: HistoryStore | undefined },
  ) => void | Promise<void>;
  /** Called when an inference fails; the batch's frames are dropped from scoring, not retried. */
  onError: (error: Error, size: number) => void;
  tracer?: Tracer;
  /** Keeps each accepted frame for incident history (engine/evidence). */
  history?: HistoryStore;
  /**
   * The streams stopped (a model's running condition fails, or a stream went silent). A frame
   * that fails the condition starts its stream's window afresh and is not scored, so no window
   * holding a stopped machine's frame is scored. Each confirmed stop is told once, at the time
   * it began (`MachineStates.stopAt`): with its batch (`onBatch`), or
   * through `onMachineStop` when none of the batch's windows was scored (none was ready, or the
   * inference failed).
   */
  machine?: MachineStates;
  onMachineStop?: (streamId: string, at: number) => void;
}

/** A machine that stopped while a batch was collected, after the batch's first `row` rows. */
export interface MachineStop {
  streamId: string;
  at: number;
  row: number;
}

/**
 * One loop, one batch at a time. It takes every committed frame in order, appends it to its
 * stream's window (releasing the slab at once) and hands ready windows to the scorer, which
 * scores them run by run. The batch ends when it is full or no further frame arrives within
 * `maxDelayMs`: at 1 frame/s a frame is scored within milliseconds, while a burst (frames that
 * queued up during the previous inference) is scored in batches of up to `maxBatch`. Request
 * handlers only commit and wake it; they never wait on it.
 */
/** What takes over between two batches (a model activation). */
export interface BatcherSwap {
  scorer: WindowScorer;
  /** A new queue (other features): the current one is drained with the current scorer first. */
  queue?: FrameQueue;
  /** Runs at the switch, synchronously, after the last batch of the old scorer (windows, alerts). */
  apply?: () => void;
  /** Where accepted frames are kept for incident history from then on (other features). */
  history?: HistoryStore;
}

export class Batcher {
  readonly #o: BatcherOptions;
  readonly #stop = new AbortController();
  readonly #tracer: Tracer;
  #queue: FrameQueue;
  #scorer: WindowScorer;
  #history: HistoryStore | undefined;
  #swap: { next: BatcherSwap; done: () => void; failed: (error: Error) => void } | undefined;
  #busy = false;
  /** The stops met while collecting the batch in progress, in frame order. */
  #stops: MachineStop[] = [];
  #loop: Promise<void> | undefined;

  constructor(options: BatcherOptions) {
    const { maxDelayMs } = options;
    if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) {
      throw new RangeError(`'BATCH_MAX_DELAY_MS' must be >= 0, got ${maxDelayMs}`);
    }
    this.#o = options;
    this.#queue = options.queue;
    this.#scorer = options.scorer;
    this.#history = options.history;
    this.#tracer = options.tracer ?? trace.getTracer("engine");
  }

  /** The queue frames are scored from (a swap to other features changes it). */
  get queue(): FrameQueue {
    return this.#queue;
  }

  /**
   * Switches to another scorer between two batches, so no window is scored twice or skipped:
   * the batch in progress finishes with the current scorer; with a new `queue`, every frame of
   * the current one is scored first. Resolves once the new scorer is in place.
   */
  swap(next: BatcherSwap): Promise<void> {
    if (this.#swap) return Promise.reject(new Error("a swap is already under way"));
    return new Promise((done, failed) => {
      // An idle loop waits on the current queue: wake it so it looks at the new one.
      const waitingOn = this.#queue;
      this.#swap = { next, done, failed };
      this.#trySwap();
      waitingOn.notify();
    });
  }

  /** Applies a pending swap if no batch is in progress and the old queue is drained. */
  #trySwap(): void {
    const pending = this.#swap;
    if (!pending || this.#busy) return;
    const { next } = pending;
    if (next.queue && next.queue !== this.#queue && this.#queue.used > 0) return;
    this.#swap = undefined;
    try {
      next.apply?.();
      this.#scorer = next.scorer;
      if (next.queue) this.#queue = next.queue;
      if (next.history) this.#history = next.history;
      pending.done();
    } catch (error) {
      pending.failed(error as Error);
    }
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
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      this.#trySwap();
      const queue = this.#queue;
      if (queue.depth === 0) {
        // Woken by a frame, a swap (notify) or, with frames still reserved by uploads under a
        // pending swap to another queue, every few milliseconds to see them committed.
        if (this.#swap) {
          const poll = deadlineSignal(5, stop);
          await queue.waitForFrames(poll.signal).finally(poll.clear);
        } else {
          await queue.waitForFrames(stop);
        }
      }
      if (stop.aborted) break;
      if (queue !== this.#queue || queue.depth === 0) continue;
      this.#busy = true;
      try {
        await this.#scorer.begin();
        const size = await this.#collect();
        if (size > 0) await this.#score(size);
      } catch (error) {
        // A bug here must not stop scoring for good: report it and carry on with the next frames.
        this.#o.onError(error instanceof Error ? error : new Error(String(error)), 0);
      } finally {
        // Stops no scored batch took (none of its windows was ready, or it failed).
        for (const stop of this.#stops.splice(0)) this.#o.onMachineStop?.(stop.streamId, stop.at);
        this.#busy = false;
      }
    }
    this.#swap?.failed(new Error("the batcher stopped before the swap"));
    this.#swap = undefined;
  }

  /** Moves frames from the queue into windows until the batch is full or the delay passes. */
  async #collect(): Promise<number> {
    const { windows, maxDelayMs } = this.#o;
    const queue = this.#queue;
    const scorer = this.#scorer;
    let deadline = 0;
    for (;;) {
      while (!scorer.full) {
        const slot = queue.take();
        if (slot < 0) break;
        const stream = queue.streamId(slot);
        this.#history?.record(stream, queue.timestamp(slot), queue.slab(slot));
        if (this.#stoppedFrame(stream, queue, slot, scorer)) {
          queue.release(slot);
          continue;
        }
        if (windows.push(stream, queue.slab(slot), scorer.input(), scorer.raw())) {
          const row = {
            streamId: stream,
            timestamp: queue.timestamp(slot),
            receivedAt: queue.receivedAt(slot),
            span: queue.span(slot),
          };
          queue.release(slot);
          await scorer.add(row);
          if (scorer.failure) return scorer.rows;
        } else {
          queue.release(slot);
        }
      }
      const size = scorer.rows;
      if (size === 0 || scorer.full || maxDelayMs === 0) return size;
      deadline ||= performance.now() + maxDelayMs;
      const remaining = deadline - performance.now();
      if (remaining <= 0 || this.#stop.signal.aborted) return size;
      const wait = deadlineSignal(Math.ceil(remaining), this.#stop.signal);
      await queue.waitForFrames(wait.signal).finally(wait.clear);
      if (queue.depth === 0) return size;
    }
  }

  /** Whether the frame in `slot` is a stopped machine's (then its stream starts afresh). */
  #stoppedFrame(stream: string, queue: FrameQueue, slot: number, scorer: WindowScorer): boolean {
    const { machine, windows } = this.#o;
    if (!machine) return false;
    const meta = scorer.model.metadata;
    const judged = machine.judge(meta, stream, queue.timestamp(slot), queue.slab(slot), windows);
    // Told after the rows collected before it (the alert path resolves the stream's incident).
    if (confirmsStop(judged)) {
      this.#stops.push({ streamId: stream, at: machine.stopAt, row: scorer.rows });
    }
    return !joinsWindow(judged);
  }

  async #score(size: number): Promise<void> {
    const scorer = this.#scorer;
    const { windowSize, frameSize } = this.#o.windows.shape;
    let batch: ScoredBatch | undefined;
    let failure: Error | undefined;
    try {
      batch = await scorer.finish();
    } catch (error) {
      failure = error as Error;
    }
    const links: Link[] = [];
    for (const context of scorer.spans()) if (context) links.push({ context });
    const span = this.#tracer.startSpan("inference batch", {
      startTime: scorer.firstRunAt || undefined,
      links,
      attributes: {
        "engine.batch.size": size,
        "engine.window.size": windowSize,
        "engine.model.features": frameSize,
        "engine.execution_provider": scorer.model.provider,
        "engine.model.version": scorer.model.metadata.version,
        "engine.inference.ms": scorer.inferenceMs,
      },
    });
    if (failure || !batch) {
      const err = failure ?? new Error("batch not scored");
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
      this.#o.onError(err, size);
      return;
    }
    const scored = batch;
    const stops = this.#stops.splice(0);
    // Inside the span, so the batch's log line and alert hand-off carry its trace id.
    try {
      await context.with(trace.setSpan(context.active(), span), () =>
        this.#o.onBatch(scored, stops, { model: scorer.model, history: this.#history }),
      );
    } finally {
      span.end();
    }
  }
}
