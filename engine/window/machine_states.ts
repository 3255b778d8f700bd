// Which streams' machines are stopped (a model's running condition fails, or the stream went silent), and since when.
import type { EngineConfig } from "../../contracts/config.ts";
import type { ModelMetadata } from "../../contracts/model.ts";
import { isRunning, type RunningCondition } from "../../contracts/running_condition.ts";
import {
  inRangeShare,
  type JudgedSensors,
  judgedSensors,
  type ReadsRunning,
  type ReadsRunningMeta,
  RunningShare,
  StopDoubt,
} from "./reads_running.ts";
import type { StreamWindows } from "./stream_windows.ts";

/**
 * What judging a frame needs of the model version that scores it (its typical ranges, running
 * levels and window too, to tell whether a stopped machine still reads as running).
 */
export type MachineMeta = Pick<ModelMetadata, "running" | "feature_names"> & ReadsRunningMeta;

/** A `/stats` `machine_off` entry: a stopped stream, since when, and whether it still reads as running. */
export interface MachineOffEntry {
  stream_id: string;
  since: string;
  reads_running?: ReadsRunning;
}

/**
 * A frame as {@link MachineStates.judge} finds it: its machine runs (it joins its window), the
 * machine runs again after its stream went silent too long (a stop before it, to be told; it
 * joins its window afresh), the condition fails but the stop is not confirmed yet, the stop is
 * confirmed with it (to be told), or the machine was stopped already.
 */
export type MachineJudgement = "running" | "resumed" | "stopping" | "stop" | "stopped";

/** Whether a frame so judged confirms a stop the alert path must be told of (at `stopAt`). */
export const confirmsStop = (judged: MachineJudgement): boolean =>
  judged === "stop" || judged === "resumed";

/** Whether a frame so judged joins its stream's window (the others are dropped, unscored). */
export const joinsWindow = (judged: MachineJudgement): boolean =>
  judged === "running" || judged === "resumed";

export interface MachineStatesOptions {
  /**
   * Consecutive frames of a stream failing the running condition that confirm a stop
   * (`RUNNING_STOP_FRAMES`; 1: the first one does). Every failing frame still restarts the
   * window and is dropped; only the confirmed stop resolves the open incident, so one reading at
   * the threshold inside an upset does not split it in two.
   */
  stopFrames?: number;
  /**
   * Stream time between two consecutive frames of a stream beyond which the stream is taken to
   * have stopped after the first (`INCIDENT_STALE_MS`: a line shut down without sending zeros),
   * so no window spans the gap, when that is also more than {@link GAP_STEPS} of the stream's
   * step before it; `Infinity` (the default) never.
   */
  gapMs?: number;
  /** Streams tracked at most, the oldest forgotten first. */
  maxStreams?: number;
  /**
   * Frames of a stream passing the running condition again after a confirmed stop that are still
   * dropped (`RUNNING_SETTLE_FRAMES`; 0, the default: none): a machine's start-up transient
   * (temperatures climbing to their working level) is no upset, and without it every planned
   * start opened an incident. The stream stays listed as stopped while they pass.
   */
  settleFrames?: number;
  /**
   * Told once when a stream its running condition calls stopped has read as a running machine
   * for a stretch (most sensors in their running range and moving): its condition's sensor may
   * have failed, and nothing of the stream is scored meanwhile.
   */
  onReadsRunning?: (streamId: string, doubt: ReadsRunning) => void;
}

/**
 * How many of a stream's own steps (the interval before) a silence must also exceed to count as
 * a stop, beside `gapMs`: a slowly sampled stream's ordinary step is no silence.
 */
export const GAP_STEPS = 10;

/** A stream whose frames fail the condition, the stop not confirmed yet. */
interface Failing {
  since: number;
  frames: number;
}

/**
 * The streams whose machine is stopped, with the frame time the stop began. Bounded like the
 * windows (`maxStreams`, oldest first), so a plant of many machines cannot grow it without end.
 * O(1) per frame. Every role that scores windows judges its frames with
 * {@link MachineStates.judge} (the single process's batcher, the scale-out worker per
 * partition), so both treat a stopped machine alike.
 */
export class MachineStates {
  readonly #stopped = new Map<string, number>();
  readonly #failing = new Map<string, Failing>();
  /** Streams running again after a stop, with how many of their frames were dropped to settle. */
  readonly #settling = new Map<string, number>();
  /** Each stream's newest frame time and the step before it, for the silence between two frames. */
  readonly #last = new Map<string, { at: number; step: number }>();
  readonly #maxStreams: number;
  readonly #stopFrames: number;
  readonly #gapMs: number;
  readonly #settleFrames: number;
  readonly #onReadsRunning: MachineStatesOptions["onReadsRunning"];
  /** Stopped streams (by their condition) and whether their frames still read as running. */
  readonly #doubts = new Map<string, StopDoubt>();
  /** Running streams' share of sensors in their running range, which a stop is held to. */
  readonly #shares = new Map<string, RunningShare>();
  #judged: JudgedSensors | undefined;
  /** The last model judged with, its running condition and that sensor's index in a frame. */
  #meta: MachineMeta | undefined;
  #cond: RunningCondition | undefined;
  #index = -1;
  #stopAt = 0;

  constructor(options: MachineStatesOptions = {}) {
    const {
      stopFrames = 1,
      gapMs = Number.POSITIVE_INFINITY,
      maxStreams = 1024,
      settleFrames = 0,
      onReadsRunning,
    } = options;
    this.#onReadsRunning = onReadsRunning;
    if (!Number.isInteger(maxStreams) || maxStreams < 1) {
      throw new RangeError(`'maxStreams' must be an integer >= 1, got ${maxStreams}`);
    }
    if (!Number.isInteger(stopFrames) || stopFrames < 1) {
      throw new RangeError(`'RUNNING_STOP_FRAMES' must be an integer >= 1, got ${stopFrames}`);
    }
    if (!(gapMs > 0)) throw new RangeError(`'gapMs' must be > 0, got ${gapMs}`);
    if (!Number.isInteger(settleFrames) || settleFrames < 0) {
      throw new RangeError(`'RUNNING_SETTLE_FRAMES' must be an integer >= 0, got ${settleFrames}`);
    }
    this.#settleFrames = settleFrames;
    this.#maxStreams = maxStreams;
    this.#stopFrames = stopFrames;
    this.#gapMs = gapMs;
  }

  /** As the engine is configured: `RUNNING_STOP_FRAMES`, and `INCIDENT_STALE_MS` for a silence. */
  static fromConfig(
    config: Pick<
      EngineConfig,
      "RUNNING_STOP_FRAMES" | "RUNNING_SETTLE_FRAMES" | "INCIDENT_STALE_MS" | "MAX_STREAMS"
    >,
    onReadsRunning?: MachineStatesOptions["onReadsRunning"],
  ): MachineStates {
    return new MachineStates({
      stopFrames: config.RUNNING_STOP_FRAMES,
      settleFrames: config.RUNNING_SETTLE_FRAMES,
      gapMs: config.INCIDENT_STALE_MS,
      maxStreams: config.MAX_STREAMS,
      onReadsRunning,
    });
  }

  /** When the stop that the last `"stop"` or `"resumed"` judgement confirmed began (frame time). */
  get stopAt(): number {
    return this.#stopAt;
  }

  /**
   * Judges a frame before it joins its stream's window, by the running condition of `meta` (the
   * version that scores it; looked up again only when it changes). A running machine's frame (or
   * any frame of a model without a condition) is `"running"` and joins its window as usual. A
   * frame that fails the condition starts its stream's window afresh (`windows.restart`), so no
   * window holding it is ever scored, and the caller drops it: `"stopping"` until `stopFrames`
   * failing frames in a row confirm the stop, `"stop"` with the frame that does (tell the alert
   * path: `AlertPipeline.machineStopped`, at {@link stopAt}, the first failing frame's time),
   * `"stopped"` after that. A frame more than `gapMs` of stream time after its stream's previous
   * one restarts the window too: the machine stopped after that previous frame, unless it was
   * stopped already (`"resumed"` when this frame runs, `"stop"` when it fails; told at `stopAt`).
   * With `settleFrames`, the first that many running frames after a confirmed stop are
   * `"stopped"` still (dropped; a silence's stop is then told as `"stop"` with the frame after it).
   *
   * @example
   * const judged = machine.judge(meta, stream, ts, values, windows);
   * if (confirmsStop(judged)) pipeline.machineStopped(stream);
   * if (joinsWindow(judged)) windows.push(stream, values, input, raw);
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
      const judged = judgedSensors(meta);
      // Another version may judge on other sensors: the doubts so far were on the last one's.
      if (judged?.sampled.length !== this.#judged?.sampled.length) {
        this.#doubts.clear();
        this.#shares.clear();
      }
      this.#judged = judged;
    }
    const silent = this.#silence(streamId, timestamp);
    if (silent !== undefined) windows.restart(streamId);
    const cond = this.#cond;
    if (!cond || this.#index < 0 || isRunning(cond, values[this.#index])) {
      const failing = this.#failing.get(streamId);
      this.#failing.delete(streamId);
      const wasStopped = this.#stopped.has(streamId);
      if (this.#settleFrames > 0 && (wasStopped || silent !== undefined)) {
        // Running again after a stop: its first frames are the start-up, dropped like a stop's.
        let settled = this.#settling.get(streamId) ?? 0;
        if (!wasStopped) {
          // The silence before this frame is the stop, told now; this frame settles.
          const since = failing?.since ?? (silent as number);
          this.stopped(streamId, since);
          this.#stopAt = since;
          settled = 0;
        }
        if (settled < this.#settleFrames) {
          windows.restart(streamId);
          this.#settling.delete(streamId);
          this.#settling.set(streamId, settled + 1);
          if (this.#settling.size > this.#maxStreams) {
            this.#settling.delete(this.#settling.keys().next().value as string);
          }
          return wasStopped ? "stopped" : "stop";
        }
      }
      this.#settling.delete(streamId);
      this.running(streamId);
      this.#doubts.delete(streamId);
      if (this.#judged) this.#runningShare(streamId, values, this.#judged);
      if (silent === undefined || wasStopped) return "running";
      this.#stopAt = failing?.since ?? silent;
      return "resumed";
    }
    this.#settling.delete(streamId);
    windows.restart(streamId);
    if (this.#stopped.has(streamId)) {
      this.#doubt(streamId, timestamp, values);
      return "stopped";
    }
    let failing = this.#failing.get(streamId);
    if (silent !== undefined) {
      // The silence confirms the stop: it began with the failing frames before it, if any.
      const since = failing?.since ?? silent;
      this.#failing.delete(streamId);
      this.stopped(streamId, since);
      this.#stopAt = since;
      this.#doubt(streamId, timestamp, values);
      return "stop";
    }
    if (!failing) {
      if (this.#failing.size >= this.#maxStreams) {
        this.#failing.delete(this.#failing.keys().next().value as string);
      }
      failing = { since: timestamp, frames: 0 };
      this.#failing.set(streamId, failing);
    }
    if (++failing.frames < this.#stopFrames) return "stopping";
    this.#failing.delete(streamId);
    this.stopped(streamId, failing.since);
    this.#stopAt = failing.since;
    this.#doubt(streamId, timestamp, values);
    return "stop";
  }

  /** Follows a running frame's share of sensors in their running range (256 at most: O(256)). */
  #runningShare(streamId: string, values: ArrayLike<number>, judged: JudgedSensors): void {
    let share = this.#shares.get(streamId);
    if (!share) {
      if (this.#shares.size >= this.#maxStreams) {
        this.#shares.delete(this.#shares.keys().next().value as string);
      }
      share = new RunningShare();
      this.#shares.set(streamId, share);
    }
    share.add(inRangeShare(judged, values), judged.frames);
  }

  /** Judges a stopped frame (by the condition) for whether the machine still reads as running. */
  #doubt(streamId: string, timestamp: number, values: ArrayLike<number>): void {
    const judged = this.#judged;
    if (!judged) return;
    let doubt = this.#doubts.get(streamId);
    if (!doubt) {
      if (this.#doubts.size >= this.#maxStreams) {
        this.#doubts.delete(this.#doubts.keys().next().value as string);
      }
      // Held to how it read while it ran, up to the stop.
      doubt = new StopDoubt(judged, this.#shares.get(streamId));
      this.#doubts.set(streamId, doubt);
    }
    if (doubt.observe(timestamp, values)) {
      const told = doubt.doubt;
      if (told) this.#onReadsRunning?.(streamId, told);
    }
  }

  /**
   * Notes the stream's frame time; when it comes more than `gapMs` after the previous one,
   * returns that previous time (the machine is taken to have stopped then).
   */
  #silence(streamId: string, timestamp: number): number | undefined {
    const last = this.#last.get(streamId);
    if (last === undefined) {
      if (this.#last.size >= this.#maxStreams) {
        this.#last.delete(this.#last.keys().next().value as string);
      }
      this.#last.set(streamId, { at: timestamp, step: 0 });
      return undefined;
    }
    if (timestamp <= last.at) return undefined;
    const step = timestamp - last.at;
    const before = last.at;
    // A silence is also many of the stream's own steps: a stream sampled every 10 minutes
    // (beyond INCIDENT_STALE_MS) keeps its windows; after its first step it is judged by it.
    const silent = step > this.#gapMs && step > GAP_STEPS * last.step && last.step > 0;
    last.at = timestamp;
    last.step = step;
    // Least recently fed last, so the bound forgets idle streams first (as the windows do).
    this.#last.delete(streamId);
    this.#last.set(streamId, last);
    return silent ? before : undefined;
  }

  /** Records a stopped machine's stop, begun at `timestamp`; true when it just stopped (it ran before). */
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
    this.#doubts.delete(streamId);
    return this.#stopped.size > 0 && this.#stopped.delete(streamId);
  }

  get size(): number {
    return this.#stopped.size;
  }

  /**
   * The stopped streams with the time each stop began, oldest stop first, and for a stop whose
   * frames still read as a running machine, since when and how (`reads_running`).
   */
  list(): MachineOffEntry[] {
    return Array.from(this.#stopped, ([stream_id, since]) => {
      const doubt = this.#doubts.get(stream_id)?.doubt;
      return {
        stream_id,
        since: new Date(since).toISOString(),
        ...(doubt ? { reads_running: doubt } : {}),
      };
    });
  }
}
