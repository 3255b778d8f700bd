// The plant simulator: one frame on demand, or a paced stream with a plan of injected anomalies.
import type { AnomalyKind } from "../../models/signal/mod.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { BackendMetrics } from "../../telemetry/metrics.ts";
import type { InjectedAnomaly, PlantStreams } from "./plant_streams.ts";
import { streamIds } from "./plant_streams.ts";
import { delay, type EngineAnswer, type FrameSender } from "./send_frame.ts";

/** An anomaly the plan places at a given frame of the run (0 = the run's first frame). */
export interface PlannedAnomaly {
  at_frame: number;
  stream_id?: string;
  kind?: AnomalyKind;
  features?: number[];
  duration?: number;
  magnitude?: number;
}

export interface StreamPlan {
  /** Frames per second per stream. */
  rate_hz: number;
  /** Seconds to run; absent = until stopped. */
  duration_s?: number;
  streams: number;
  /** A random anomaly about this often (first after half a period); 0 = none. */
  anomaly_every_s: number;
  /** Kinds random anomalies are drawn from (default: all). */
  kinds?: AnomalyKind[];
  /** Explicit anomalies, besides the random ones. */
  anomalies?: PlannedAnomaly[];
  /** Machine stops: from frame `at_frame` of the run, `duration` frames of a stopped machine. */
  stops?: PlannedStop[];
  /** The operating point moves (or moves back) from frame `at_frame` of the run and stays. */
  moves?: PlannedMove[];
}

/** A planned move of a stream's operating point (`moved: false` moves it back). */
export interface PlannedMove {
  at_frame: number;
  stream_id?: string;
  moved?: boolean;
}

/** A planned machine stop (the plant's drive reads 0, then it runs on). */
export interface PlannedStop {
  at_frame: number;
  stream_id?: string;
  duration: number;
}

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

/**
 * Creates the simulator. `sendOne` is `POST /data/send`; `start(plan)` runs the stream mode in
 * the background until its duration ends or `stop()`.
 */
export function createSimulator(options: SimulatorOptions) {
  const { streams, send, log, metrics } = options;
  const streamSend = options.streamSend ?? send;
  const now = options.now ?? (() => Date.now());
  const movedStreams = new Set<string>();
  let run: { controller: AbortController; done: Promise<void> } | undefined;
  let status: Omit<SimulatorStatus, "injected" | "moved_streams"> = {
    running: false,
    plan: null,
    started_at: null,
    frames_sent: 0,
    answers: {},
    retries: 0,
    last_error: null,
  };

  function count(answer: EngineAnswer | "error") {
    const key = answer === "error" ? "error" : String(answer.status);
    status.answers[key] = (status.answers[key] ?? 0) + 1;
    metrics?.framesSent.add(1, { status: key });
    if (answer !== "error") status.retries += answer.attempts - 1;
  }

  /** Generates one frame of `streamId`, sends it once, and returns the engine's answer. */
  async function sendOne(streamId = "default", signal?: AbortSignal): Promise<EngineAnswer> {
    const frame = await streams.next(streamId, now());
    const answer = await send(frame.gzip, signal);
    count(answer);
    return answer;
  }

  async function loop(plan: StreamPlan, signal: AbortSignal) {
    const ids = streamIds(plan.streams);
    const periodMs = 1000 / plan.rate_hz;
    const total =
      plan.duration_s === undefined ? Infinity : Math.round(plan.duration_s * plan.rate_hz);
    const every = Math.max(1, Math.round(plan.anomaly_every_s * plan.rate_hz));
    const kinds = plan.kinds?.length ? plan.kinds : undefined;
    let t0 = now();
    for (let tick = 0; tick < total && !signal.aborted; tick++) {
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
        const frame = await streams.next(id, now());
        try {
          count(await streamSend(frame.gzip, signal));
        } catch (error) {
          if (signal.aborted) return;
          count("error");
          status.last_error = (error as Error).message;
          log?.warn("frame not delivered", { stream_id: id, error: status.last_error });
        }
        status.frames_sent++;
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
    movedStreams.add(streamId);
    if (!moved) movedStreams.delete(streamId);
    return move;
  }

  /** Starts the stream mode (stopping a run in progress first). */
  async function start(plan: StreamPlan): Promise<void> {
    if (!(plan.rate_hz > 0)) throw new RangeError(`'rate_hz' must be > 0, got ${plan.rate_hz}`);
    for (const a of plan.anomalies ?? []) {
      const bad = a.features?.find((f) => !(f >= 0 && f < streams.nFeatures));
      if (bad !== undefined) {
        throw new RangeError(`'features' must be 0..${streams.nFeatures - 1}, got ${bad}`);
      }
    }
    await stop();
    const controller = new AbortController();
    status = {
      running: true,
      plan,
      started_at: new Date(now()).toISOString(),
      frames_sent: 0,
      answers: {},
      retries: 0,
      last_error: null,
    };
    log?.info("simulator streaming", { ...plan });
    const done = loop(plan, controller.signal)
      .catch((error) => log?.error("simulator stopped by an error", error))
      .finally(() => {
        status.running = false;
      });
    run = { controller, done };
  }

  /** Stops the stream mode and waits for the frame in flight. */
  async function stop(): Promise<void> {
    if (!run) return;
    const current = run;
    run = undefined;
    current.controller.abort(new Error("simulator stopped"));
    await current.done;
  }

  return {
    sendOne,
    start,
    stop,
    /** Resolves when the current run ends by itself (duration reached). */
    finished: (): Promise<void> => run?.done ?? Promise.resolve(),
    moveOperatingPoint,
    status: (): SimulatorStatus => ({
      ...status,
      injected: streams.groundTruth(),
      moved_streams: [...movedStreams].sort(),
    }),
  };
}
