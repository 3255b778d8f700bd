// The frames of the batch being scored, by row: the recorder's frame source where no frame store keeps them (the scale-out worker).
import type { ModelMetadata } from "../../contracts/model.ts";
import { isRunning, type RunningCondition } from "../../contracts/running_condition.ts";
import type { ScoredBatch } from "../batch/window_scorer.ts";
import type { HistorySpan } from "../evidence/history_store.ts";
import type { FrameSource } from "./history_recorder.ts";

const EMPTY = new Float32Array(0);

/** What `running` needs of the scoring version: its running condition and sensor names. */
type MachineMeta = Pick<ModelMetadata, "running" | "feature_names">;

/** A span of one frame, reused: the recorder copies what it keeps before asking again. */
class OneFrame implements HistorySpan {
  readonly length = 1;
  at = 0;
  values: Float32Array = EMPTY;
  time(): number {
    return this.at;
  }
  value(_i: number, f: number): number {
    return this.values[f];
  }
  frame(): Float32Array {
    return this.values;
  }
}

/**
 * While a batch fills, the driver notes each row's newest frame (`set`: a reference, no copy);
 * once scored, `over(view, from)` serves a slice of the batch (rows `from ..`, as `view` lists
 * them) to `HistoryRecorder.scored`, which copies only the frames it keeps, and `clear` lets go of
 * the references. A frame is looked up by stream and timestamp; the recorder asks row by row, so
 * the search starts at the last row found (asked again by `span` after `running`), then the
 * next: O(1) a frame. `running` answers the recorder's machine-off hook from the frame's own
 * reading and the scoring version's running condition, as the single process's batcher judges
 * a frame before scoring it.
 *
 * @example
 * frames.set(scorer.rows, frame.values); await scorer.add(row);
 * recorders.scored(view, { model, history: frames.over(view, range.from) }); frames.clear();
 */
export class BatchFrames implements FrameSource {
  readonly #values: (Float32Array | undefined)[] = [];
  readonly #span = new OneFrame();
  #view: Pick<ScoredBatch, "size" | "streamIds" | "timestamps"> | undefined;
  #from = 0;
  #cursor = 0;
  /** The running condition of the version that scored the batch served, and its sensor's index. */
  #machine: { meta: MachineMeta; cond?: RunningCondition; index: number } | undefined;

  /** Row `row` of the batch being filled holds a window whose newest frame is `values`. */
  set(row: number, values: Float32Array): void {
    this.#values[row] = values;
  }

  /**
   * Serves `view`, rows `from .. from + view.size` of the batch, until the next call; `meta` is
   * the version that scored it (its running condition, when it has one, judges `running`).
   */
  over(
    view: Pick<ScoredBatch, "size" | "streamIds" | "timestamps">,
    from: number,
    meta?: MachineMeta,
  ): this {
    this.#view = view;
    this.#from = from;
    this.#cursor = 0;
    if (meta && this.#machine?.meta !== meta) {
      const cond = meta.running;
      this.#machine = { meta, cond, index: cond ? meta.feature_names.indexOf(cond.feature) : -1 };
    } else if (!meta) this.#machine = undefined;
    return this;
  }

  /** Drops the batch's frames (their buffers are the bus messages'). */
  clear(): void {
    this.#values.fill(undefined);
    this.#view = undefined;
  }

  span(streamId: string, from: number, to: number): HistorySpan | undefined {
    if (from !== to) return undefined;
    const values = this.#find(streamId, from);
    if (!values) return undefined;
    this.#cursor++;
    this.#span.at = from;
    this.#span.values = values;
    return this.#span;
  }

  /**
   * Whether `streamId`'s frame at `at` in the batch served says its machine runs: false only
   * when the scoring version has a running condition and the frame's reading fails it (a frame
   * not in the batch, or a model without a condition: true).
   */
  running(streamId: string, at: number): boolean {
    const machine = this.#machine;
    if (!machine?.cond || machine.index < 0) return true;
    const values = this.#find(streamId, at);
    return !values || isRunning(machine.cond, values[machine.index]);
  }

  /** Row `(stream, at)`'s newest frame; the search goes on from that row next time. */
  #find(streamId: string, at: number): Float32Array | undefined {
    const view = this.#view;
    if (!view) return undefined;
    const n = view.size;
    for (let k = 0; k < n; k++) {
      const r = (this.#cursor + k) % n;
      if (view.streamIds[r] !== streamId || view.timestamps[r] !== at) continue;
      this.#cursor = r;
      return this.#values[this.#from + r];
    }
    return undefined;
  }
}
