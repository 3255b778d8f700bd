// The plant simulator: one frame on demand, or a paced stream with a plan of injected anomalies.
import { HttpError } from "../../contracts/error.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { BackendMetrics } from "../../telemetry/metrics.ts";
import type { InjectedAnomaly, PlantStreams } from "./plant_streams.ts";
import { streamIds } from "./plant_streams.ts";
import { delay, type EngineAnswer, type FrameSender } from "./send_frame.ts";
import { checkPlan, type StreamPlan } from "./stream_plan.ts";

export type { PlannedAnomaly, PlannedMove, PlannedStop, StreamPlan } from "./stream_plan.ts";

export interface SimulatorStatus {
  running: boolean;
  plan: StreamPlan | null;
  started_at: string | null;
  frames_sent: number;
  /** Final engine answers by status code ("error" for unreachable). */
  answers: Record<string, number>;
  retries: number;
  last_error: string | null;
  injected: readonly InjectedAnomaly[];
  /** Streams running at a moved operating point. */
  moved_streams: string[];
}

export interface SimulatorOptions {
  streams: PlantStreams;
  send: FrameSender;
  /** Sender used by the stream mode (with retries); defaults to `send`. */
  streamSend?: FrameSender;
  now?: () => number;
  log?: Logger;
  metrics?: BackendMetrics;
}

export type Simulator = ReturnType<typeof createSimulator>;

type RunStatus = Omit<SimulatorStatus, "injected" | "moved_streams">;

interface Run {
  controller: AbortController;
  status: RunStatus;
  done: Promise<void>;
}

/**
 * Creates the simulator. `sendOne` is `POST /data/send`; `start(plan)` runs the stream mode in
 * the background until its duration ends or `stop()`. Starts and stops take turns (each waits
 * for those asked for before it), so at most one run exists and `stop()` stops it.
 */
export function createSimulator(options: SimulatorOptions) {
  const { streams, send, log, metrics } = options;
  const streamSend = options.streamSend ?? send;
  const now = options.now ?? (() => Date.now());
  let run: Run | undefined;
  let status: RunStatus = {
    running: false,
    plan: null,
    started_at: null,
    frames_sent: 0,
    answers: {},
    retries: 0,
    last_error: null,
  };
  // The tail of the starts and stops asked for so far; each runs after the one before.
  let turns: Promise<unknown> = Promise.resolve();
  // Whether a run was asked to start or stop since creation (the start-up plan then stands down).
  let operated = false;

  function inTurn<T>(task: () => Promise<T>): Promise<T> {
    const result = turns.then(task);
    turns = result.catch(() => {});
    return result;
  }

  function count(answer: EngineAnswer | "error", into: RunStatus = status) {
    const key = answer === "error" ? "error" : String(answer.status);
    into.answers[key] = (into.answers[key] ?? 0) + 1;
    metrics?.framesSent.add(1, { status: key });
    if (answer !== "error") into.retries += answer.attempts - 1;
  }

  /**
   * Generates one frame of `streamId`, sends it once, and returns the engine's answer. A frame
   * that cannot be generated is `422 frame_invalid_value` (its anomalies are dropped, so the
   * next one goes through).
   */
  async function sendOne(streamId = "default", signal?: AbortSignal): Promise<EngineAnswer> {
    let frame: Awaited<ReturnType<PlantStreams["next"]>>;
    try {
      frame = await streams.next(streamId, now());
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      throw new HttpError(422, "frame_invalid_value", error.message);
    }
    const answer = await send(frame.gzip, signal);
    count(answer);
    return answer;
  }

  async function loop(plan: StreamPlan, self: Run) {
    const { signal } = self.controller;
    const at = self.status;
    // After any wait: a run that is no longer the current one stops itself.
    const current = () => {
      if (run !== self) self.controller.abort(new Error("simulator run replaced"));
      return !signal.aborted;
    };
    const ids = streamIds(plan.streams);
    const periodMs = 1000 / plan.rate_hz;
    const total =
      plan.duration_s === undefined ? Infinity : Math.round(plan.duration_s * plan.rate_hz);
    const every = Math.max(1, Math.round(plan.anomaly_every_s * plan.rate_hz));
    const kinds = plan.kinds?.length ? plan.kinds : undefined;
    let t0 = now();
    for (let tick = 0; tick < total && current(); tick++) {
      for (const a of plan.anomalies ?? []) {
        if (a.at_frame !== tick) continue;
        const injected = streams.inject(a.stream_id ?? ids[0], a);
        log?.info("anomaly injected", { ...injected });
      }
      for (const stop of plan.stops ?? []) {
        if (stop.at_frame !== tick) continue;
        const streamId = stop.stream_id ?? ids[0];
        const running = streams.stop(streamId, stop.duration);
        log?.info("machine stopped", { stream_id: streamId, frames: stop.duration, running });
      }
      for (const m of plan.moves ?? []) {
        if (m.at_frame === tick) moveOperatingPoint(m.stream_id ?? ids[0], m.moved ?? true);
      }
      if (plan.anomaly_every_s > 0 && tick % every === Math.floor(every / 2)) {
        const kind = kinds?.[streams.pick(kinds.length)];
        // Capped at half a period so injected anomalies do not overlap.
        const maxDuration = Math.max(1, Math.floor(every / 2));
        const injected = streams.inject(ids[streams.pick(ids.length)], { kind, maxDuration });
        log?.info("anomaly injected", { ...injected });
      }
      for (const id of ids) {
        let frame: Awaited<ReturnType<PlantStreams["next"]>>;
        try {
          frame = await streams.next(id, now());
        } catch (error) {
          if (!current()) return;
          // The stream's anomalies are dropped with the frame; the run goes on without them.
          at.last_error = (error as Error).message;
          log?.warn("frame not generated", { stream_id: id, error: at.last_error });
          continue;
        }
        if (!current()) return;
        try {
          count(await streamSend(frame.gzip, signal), at);
        } catch (error) {
          if (!current()) return;
          count("error", at);
          at.last_error = (error as Error).message;
          log?.warn("frame not delivered", { stream_id: id, error: at.last_error });
        }
        at.frames_sent++;
      }
      const lag = now() - (t0 + (tick + 1) * periodMs);
      // More than a second behind: re-anchor rather than burst to catch up.
      if (lag > 1000) t0 += lag;
      else if (lag < 0) await delay(-lag, signal).catch(() => {});
    }
  }

  /** Moves `streamId`'s operating point from its next frame on (`moved` false: back); logged. */
  function moveOperatingPoint(streamId: string, moved: boolean) {
    const move = streams.moveOperatingPoint(streamId, moved);
    if (!moved) log?.info("operating point moved back", { stream_id: streamId });
    else {
      log?.info("operating point moved", {
        stream_id: streamId,
        shifted_sensors: move?.shifted.length,
        shift_std: move?.shiftStd,
        mirrored: move?.mirrored,
        coupled: move?.coupled,
      });
    }
    return move;
  }

  /** Begins a run of `plan`; only in turn, with no run left. */
  function begin(plan: StreamPlan) {
    status = {
      running: true,
      plan,
      started_at: new Date(now()).toISOString(),
      frames_sent: 0,
      answers: {},
      retries: 0,
      last_error: null,
    };
    const self: Run = { controller: new AbortController(), status, done: Promise.resolve() };
    run = self;
    streams.keep(streamIds(plan.streams));
    log?.info("simulator streaming", { ...plan });
    self.done = loop(plan, self)
      .catch((error) => log?.error("simulator stopped by an error", error))
      .finally(() => {
        self.status.running = false;
        if (run === self) streams.keep([]);
      });
  }

  /** Stops the run, if any, and waits for its frame in flight; only in turn. */
  async function end(): Promise<void> {
    const current = run;
    if (!current) return;
    run = undefined;
    current.controller.abort(new Error("simulator stopped"));
    await current.done;
    streams.keep([]);
  }

  /** Starts the stream mode (stopping a run in progress first). */
  async function start(plan: StreamPlan): Promise<void> {
    checkPlan(plan, streams.nFeatures);
    operated = true;
    await inTurn(async () => {
      await end();
      begin(plan);
    });
  }

  /**
   * Starts `plan` unless a run was started or stopped since the simulator was created, and says
   * whether it did: a start-up plan that waited for the engine leaves an operator's choice be.
   */
  async function startUnlessOperated(plan: StreamPlan): Promise<boolean> {
    checkPlan(plan, streams.nFeatures);
    if (operated) return false;
    operated = true;
    await inTurn(async () => begin(plan));
    return true;
  }

  /** Stops the stream mode and waits for the frame in flight. */
  function stop(): Promise<void> {
    operated = true;
    return inTurn(end);
  }

  return {
    sendOne,
    start,
    startUnlessOperated,
    stop,
    /** Resolves when the current run ends by itself (duration reached). */
    finished: (): Promise<void> => run?.done ?? Promise.resolve(),
    moveOperatingPoint,
    status: (): SimulatorStatus => ({
      ...status,
      injected: streams.groundTruth(),
      moved_streams: streams.movedStreams(),
    }),
  };
}
