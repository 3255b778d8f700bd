// Which streams' machines are stopped (a model's running condition fails), and since when.
import type { ModelMetadata } from "../../contracts/model.ts";
import { isRunning, type RunningCondition } from "../../contracts/running_condition.ts";
import type { StreamWindows } from "./stream_windows.ts";

/** What judging a frame needs of the model version that scores it. */
export type MachineMeta = Pick<ModelMetadata, "running" | "feature_names">;

/**
 * A frame as {@link MachineStates.judge} finds it: its machine runs (it joins its window), the
 * machine stops with it (the stop begins), or the machine was stopped already.
 */
export type MachineJudgement = "running" | "stop" | "stopped";

/**
 * The streams whose last frame said the machine was not running, with the frame time the stop
 * began. Bounded like the windows (`maxStreams`, oldest stop forgotten first), so a plant of
 * many machines cannot grow it without end. O(1) per frame. Every role that scores windows
 * judges its frames with {@link MachineStates.judge} (the single process's batcher, the
 * scale-out worker per partition), so both treat a stopped machine alike.
 */
export class MachineStates {
  readonly #stopped = new Map<string, number>();
  readonly #maxStreams: number;
  /** The last model judged with, its running condition and that sensor's index in a frame. */
  #meta: MachineMeta | undefined;
  #cond: RunningCondition | undefined;
  #index = -1;

  constructor(maxStreams = 1024) {
    if (!Number.isInteger(maxStreams) || maxStreams < 1) {
      throw new RangeError(`'maxStreams' must be an integer >= 1, got ${maxStreams}`);
    }
    this.#maxStreams = maxStreams;
  }

  /**
   * Judges a frame before it joins its stream's window, by the running condition of `meta` (the
   * version that scores it; looked up again only when it changes). A running machine's frame (or
   * any frame of a model without a condition) is `"running"` and joins its window as usual. A
   * stopped machine's frame starts its stream's window afresh (`windows.restart`), so no window
   * holding it is ever scored, and the caller drops it: `"stop"` when the stop begins with it
   * (tell the alert path: `AlertPipeline.machineStopped`), `"stopped"` after that.
   *
   * @example
   * if (machine.judge(meta, stream, ts, values, windows) === "stop") pipeline.machineStopped(stream);
   */
  judge(
    meta: MachineMeta,
    streamId: string,
    timestamp: number,
    values: ArrayLike<number>,
    windows: Pick<StreamWindows, "restart">,
  ): MachineJudgement {
    if (meta !== this.#meta) {
      this.#meta = meta;
      this.#cond = meta.running;
      this.#index = meta.running ? meta.feature_names.indexOf(meta.running.feature) : -1;
    }
    const cond = this.#cond;
    if (!cond || this.#index < 0 || isRunning(cond, values[this.#index])) {
      this.running(streamId);
      return "running";
    }
    windows.restart(streamId);
    return this.stopped(streamId, timestamp) ? "stop" : "stopped";
  }

  /** Records a frame of a stopped machine; true when it just stopped (it ran before). */
  stopped(streamId: string, timestamp: number): boolean {
    if (this.#stopped.has(streamId)) return false;
    if (this.#stopped.size >= this.#maxStreams) {
      this.#stopped.delete(this.#stopped.keys().next().value as string);
    }
    this.#stopped.set(streamId, timestamp);
    return true;
  }

  /** Records a frame of a running machine; true when it just started again. */
  running(streamId: string): boolean {
    return this.#stopped.size > 0 && this.#stopped.delete(streamId);
  }

  get size(): number {
    return this.#stopped.size;
  }

  /** The stopped streams with the time each stop began, oldest stop first. */
  list(): { stream_id: string; since: string }[] {
    return Array.from(this.#stopped, ([stream_id, since]) => ({
      stream_id,
      since: new Date(since).toISOString(),
    }));
  }
}
