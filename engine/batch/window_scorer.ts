// Scores a batch of windows: run-sized input, outputs, flagged sensors and their evidence. Every role drives this one unit.
import type { SpanContext } from "@opentelemetry/api";
import { rankFlagged } from "../../scoring/flagged_sensors.ts";
import { keepEvidence, type WindowShape } from "../../scoring/window_features.ts";
import type { ScoringModel } from "../infer/load_model.ts";

/** A scored batch (or a slice of one), valid until the scorer's next `begin` (buffers are reused). */
export interface ScoredBatch {
  size: number;
  /** Scores a row (the model's `n_features`). */
  nFeatures: number;
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
  /** `performance.now()` when the newest frame was received (this process's clock). */
  receivedAt: Float64Array;
  spans: readonly (SpanContext | undefined)[];
  /** ONNX Runtime time for the batch, and `performance.now()` when it completed. */
  inferenceMs: number;
  completedAt: number;
}

/**
 * Rows `from .. to` of a scored batch as a batch of their own, as {@link WindowScorer.view}
 * gives them: offsets in `flaggedFrom`/`evidenceFrom` stay absolute, into `flagged` and
 * `windows` as they are.
 */
export function sliceBatch(batch: ScoredBatch, from: number, to: number): ScoredBatch {
  if (from === 0 && to === batch.size) return batch;
  const at = from * batch.nFeatures;
  return {
    ...batch,
    size: to - from,
    scores: batch.scores.subarray(at),
    severity: batch.severity?.subarray(at),
    statistic: batch.statistic?.subarray(at),
    flaggedFrom: batch.flaggedFrom.subarray(from),
    evidenceFrom: batch.evidenceFrom.subarray(from),
    streamIds: batch.streamIds.slice(from, to),
    timestamps: batch.timestamps.subarray(from, to),
    receivedAt: batch.receivedAt.subarray(from, to),
    spans: batch.spans.slice(from, to),
  };
}

/** The newest frame of a window, as its row of the batch reports it. */
export interface WindowRow {
  streamId: string;
  timestamp: number;
  /** `performance.now()` at reception. */
  receivedAt: number;
  span?: SpanContext;
}

export interface WindowScorerOptions {
  model: ScoringModel;
  shape: WindowShape;
  /** Windows per batch at most (`INFERENCE_BATCH_SIZE`). */
  maxBatch: number;
  /** Which sensors count as flagged, and how many of a window keep their raw readings. */
  flag: { threshold: number; maxFeatures: number; severityScale: number };
}

/**
 * One batch at a time: a driver awaits `begin`, then for each window writes it into `input()`
 * (and the baseline sensors' readings into `raw()`) and calls `add`, then `finish`. Windows pass
 * through tensors of only `model.windowsPerRun` windows (ONNX Runtime's run size): each time one
 * fills it is scored into the batch's rows, so a batch of 64 never holds a 32 MB
 * `[64, window, features]` copy and inference starts before the batch is complete. There are
 * RUNS_IN_FLIGHT + 1 such tensors, used in turn: while runs are scored (on the inference worker)
 * the driver fills the next one, so the event loop assembles windows instead of waiting; `add`
 * waits only when every tensor is taken. After each run its rows' flagged sensors are ranked, in
 * row order, and their windows copied out before its tensor is filled again.
 * The evidence buffers grow to the largest batch seen and are reused.
 *
 * The first failed run fails the batch: later runs are skipped and `finish` throws it.
 */
export class WindowScorer {
  readonly #o: WindowScorerOptions;
  readonly #runSize: number;
  /** The run tensors `[run, window, features]`, used in turn; `#filling` is the one windows go into. */
  readonly #inputs: Float32Array[];
  /** The baseline sensors' readings of each run tensor's windows (`[run, window, baseline sensors]`). */
  readonly #raws: Float32Array[];
  #filling = 0;
  /** Runs being scored, oldest first: each settles after its rows' flagged sensors are kept. */
  #inFlight: Promise<void>[] = [];
  readonly #output: Float32Array;
  readonly #severity: Float32Array | undefined;
  readonly #statistic: Int32Array | undefined;
  #flagged = new Int32Array(0);
  readonly #flaggedFrom: Uint32Array;
  readonly #evidenceFrom: Uint32Array;
  #windows = new Float32Array(0);
  #levels = new Float32Array(0);
  readonly #streamIds: string[];
  readonly #timestamps: Float64Array;
  readonly #receivedAt: Float64Array;
  readonly #spans: (SpanContext | undefined)[];
  #rows = 0;
  /** Windows in the run tensor being filled, not scored yet. */
  #pending = 0;
  #inferenceMs = 0;
  /** `performance.now()` when the batch's latest run so far completed. */
  #lastRunEnd = 0;
  /** Epoch ms when the batch's first run started (a trace span's start). */
  #firstRunAt = 0;
  #failure: Error | undefined;

  constructor(options: WindowScorerOptions) {
    const { maxBatch, shape, model } = options;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) {
      throw new RangeError(`'INFERENCE_BATCH_SIZE' must be an integer 1..4096, got ${maxBatch}`);
    }
    const F = shape.frameSize;
    this.#o = options;
    this.#runSize = Math.max(1, Math.min(maxBatch, model.windowsPerRun));
    const run = () => new Float32Array(this.#runSize * shape.windowValues);
    const raw = () => new Float32Array(this.#runSize * shape.windowSize * shape.baselineSize);
    this.#inputs = Array.from({ length: RUNS_IN_FLIGHT + 1 }, run);
    this.#raws = Array.from({ length: RUNS_IN_FLIGHT + 1 }, raw);
    this.#output = new Float32Array(maxBatch * F);
    if (model.outputs.severity) this.#severity = new Float32Array(maxBatch * F);
    if (model.outputs.statistic) this.#statistic = new Int32Array(maxBatch * F);
    this.#flaggedFrom = new Uint32Array(maxBatch + 1);
    this.#evidenceFrom = new Uint32Array(maxBatch + 1);
    this.#streamIds = new Array<string>(maxBatch).fill("");
    this.#timestamps = new Float64Array(maxBatch);
    this.#receivedAt = new Float64Array(maxBatch);
    this.#spans = new Array<SpanContext | undefined>(maxBatch).fill(undefined);
  }

  /** The model that scores (its provider and version name a batch's trace span). */
  get model(): ScoringModel {
    return this.#o.model;
  }

  get maxBatch(): number {
    return this.#o.maxBatch;
  }

  /** Windows added to the batch so far. */
  get rows(): number {
    return this.#rows;
  }

  get full(): boolean {
    return this.#rows >= this.#o.maxBatch;
  }

  /** The batch's first inference failure, once one happened. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** ONNX Runtime time of the batch so far, and when its first run started (epoch ms, 0: none). */
  get inferenceMs(): number {
    return this.#inferenceMs;
  }

  get firstRunAt(): number {
    return this.#firstRunAt;
  }

  /**
   * Starts a new batch once any run still in flight has settled (a driver that gave up on a batch
   * midway); the previous batch's views are no longer valid.
   */
  async begin(): Promise<void> {
    await Promise.all(this.#inFlight);
    this.#inFlight = [];
    this.#rows = 0;
    this.#pending = 0;
    this.#inferenceMs = 0;
    this.#lastRunEnd = 0;
    this.#firstRunAt = 0;
    this.#failure = undefined;
  }

  /** Where the next window goes: `[window, features]`, what the model sees. */
  input(): Float32Array {
    const n = this.#o.shape.windowValues;
    return this.#inputs[this.#filling].subarray(this.#pending * n, (this.#pending + 1) * n);
  }

  /** Where the next window's baseline readings go (`[window, baseline sensors]`, may be empty). */
  raw(): Float32Array {
    const n = this.#o.shape.windowSize * this.#o.shape.baselineSize;
    return this.#raws[this.#filling].subarray(this.#pending * n, (this.#pending + 1) * n);
  }

  /**
   * Adds the window written into `input()` as the batch's next row; once its run is full, starts
   * scoring it (after the run before it completes). Returns the row's index.
   */
  async add(row: WindowRow): Promise<number> {
    const r = this.#rows;
    if (r >= this.#o.maxBatch) throw new RangeError(`batch holds ${r} windows already`);
    this.#streamIds[r] = row.streamId;
    this.#timestamps[r] = row.timestamp;
    this.#receivedAt[r] = row.receivedAt;
    this.#spans[r] = row.span;
    this.#rows++;
    this.#pending++;
    if (this.#pending === this.#runSize) await this.#launch();
    return r;
  }

  /** Scores what is left and returns the whole batch; throws the batch's inference failure. */
  async finish(): Promise<ScoredBatch> {
    await this.#launch();
    await Promise.all(this.#inFlight);
    this.#inFlight = [];
    if (this.#failure) throw this.#failure;
    return this.view(0, this.#rows, performance.now());
  }

  /**
   * Rows `from .. to` of the scored batch as a batch of their own (a partition's rows). Offsets
   * in `flaggedFrom`/`evidenceFrom` stay absolute, into `flagged` and `windows` as they are.
   */
  view(from: number, to: number, completedAt: number): ScoredBatch {
    const F = this.#o.shape.frameSize;
    return {
      size: to - from,
      nFeatures: F,
      scores: this.#output.subarray(from * F),
      severity: this.#severity?.subarray(from * F),
      statistic: this.#statistic?.subarray(from * F),
      flagged: this.#flagged,
      flaggedFrom: this.#flaggedFrom.subarray(from),
      evidenceFrom: this.#evidenceFrom.subarray(from),
      windows: this.#windows,
      levels: this.#levels,
      streamIds: this.#streamIds.slice(from, to),
      timestamps: this.#timestamps.subarray(from, to),
      receivedAt: this.#receivedAt.subarray(from, to),
      spans: this.#spans.slice(from, to),
      inferenceMs: this.#inferenceMs,
      completedAt,
    };
  }

  /** The spans of the batch's rows (links of a batch trace span). */
  spans(): readonly (SpanContext | undefined)[] {
    return this.#spans.slice(0, this.#rows);
  }

  /**
   * Starts scoring the windows waiting in the run tensor being filled, into their batch rows of
   * `#output`, once fewer than RUNS_IN_FLIGHT runs are in flight; windows then go into the next
   * tensor (free: its run was the oldest, and has completed).
   */
  async #launch(): Promise<void> {
    const n = this.#pending;
    if (n === 0) return;
    this.#pending = 0;
    const from = this.#rows - n;
    const tensor = this.#filling;
    if (this.#inFlight.length >= RUNS_IN_FLIGHT) await this.#inFlight.shift();
    this.#filling = (tensor + 1) % this.#inputs.length;
    if (this.#failure) return;
    this.#inFlight.push(this.#score(tensor, from, n, this.#inFlight.at(-1)));
  }

  /**
   * Scores run tensor `tensor`'s `n` windows into rows `from ..`, then, once the run before it
   * (`previous`) has kept its rows' flagged sensors, keeps these rows' (row offsets build on it).
   */
  async #score(tensor: number, from: number, n: number, previous?: Promise<void>): Promise<void> {
    const F = this.#o.shape.frameSize;
    this.#firstRunAt ||= performance.timeOrigin + performance.now();
    const started = performance.now();
    const rows = <T extends Float32Array | Int32Array>(a: T | undefined) =>
      a?.subarray(from * F, (from + n) * F) as T | undefined;
    let failure: Error | undefined;
    try {
      await this.#o.model.score(this.#inputs[tensor], n, rows(this.#output) as Float32Array, {
        severity: rows(this.#severity),
        statistic: rows(this.#statistic),
      });
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
    } finally {
      // Runs queue at the worker: count each from when it could start, not twice over.
      const ended = performance.now();
      this.#inferenceMs += ended - Math.max(started, this.#lastRunEnd);
      this.#lastRunEnd = Math.max(ended, this.#lastRunEnd);
    }
    await previous;
    this.#failure ??= failure;
    if (!this.#failure) this.#keepFlagged(tensor, from, n);
  }

  /**
   * Notes the flagged sensors of rows `from .. from + n` and copies the windows of the most
   * severe ones out of run tensor `tensor` before it is filled again.
   */
  #keepFlagged(tensor: number, from: number, n: number): void {
    const { shape, flag } = this.#o;
    const { frameSize: F, windowSize: W, baselineSize: nb } = shape;
    if (from === 0) {
      this.#flaggedFrom[0] = 0;
      this.#evidenceFrom[0] = 0;
    }
    for (let k = 0; k < n; k++) {
      const r = from + k;
      const at = this.#flaggedFrom[r];
      if (this.#flagged.length < at + F) this.#flagged = grow(this.#flagged, at + F);
      const row = {
        scores: this.#output.subarray(r * F, (r + 1) * F),
        severity: this.#severity?.subarray(r * F, (r + 1) * F),
      };
      const count = rankFlagged(
        row,
        F,
        flag.threshold,
        flag.severityScale,
        this.#flagged,
        at,
        flag.maxFeatures,
      );
      this.#flaggedFrom[r + 1] = at + count;
      const listed = Math.min(count, flag.maxFeatures);
      const ev = this.#evidenceFrom[r];
      this.#evidenceFrom[r + 1] = ev + listed;
      if (listed === 0) continue;
      if (this.#windows.length < (ev + listed) * W) {
        this.#windows = grow(this.#windows, (ev + listed) * W);
      }
      if (this.#levels.length < ev + listed) this.#levels = grow(this.#levels, ev + listed);
      keepEvidence(
        shape,
        this.#inputs[tensor].subarray(k * W * F),
        this.#raws[tensor].subarray(k * W * nb),
        this.#flagged.subarray(at, at + listed),
        this.#windows.subarray(ev * W),
        this.#levels.subarray(ev),
      );
    }
  }
}

/**
 * Runs a batch may have in flight at once. Two: the inference worker queues the second and starts
 * it as soon as the first is done, instead of idling until this thread, busy with requests, reads
 * the first reply (measured: engine/README.md).
 */
const RUNS_IN_FLIGHT = 2;

/** A larger copy of `a` (at least `need` long, doubling), keeping its contents. */
function grow<T extends Int32Array | Float32Array>(a: T, need: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, 2 * a.length, 1024));
  b.set(a);
  return b;
}
