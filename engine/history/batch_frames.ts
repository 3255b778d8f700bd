// The frames of the batch being scored, by row: the recorder's frame source where no frame store keeps them (the scale-out worker).
import type { ScoredBatch } from "../batch/window_scorer.ts";
import type { HistorySpan } from "../evidence/history_store.ts";
import type { FrameSource } from "./history_recorder.ts";

const EMPTY = new Float32Array(0);

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
 * the search starts at the last row found, then the next: O(1) a frame. A stopped machine's
 * frames never reach it: the worker drops them before scoring, as the single process does.
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

  /** Row `row` of the batch being filled holds a window whose newest frame is `values`. */
  set(row: number, values: Float32Array): void {
    this.#values[row] = values;
  }

  /** Serves `view`, rows `from .. from + view.size` of the batch, until the next call. */
  over(view: Pick<ScoredBatch, "size" | "streamIds" | "timestamps">, from: number): this {
    this.#view = view;
    this.#from = from;
    this.#cursor = 0;
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
