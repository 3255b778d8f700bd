// The plant simulator: one frame on demand, or a paced stream with a plan of injected anomalies.
import { context, ROOT_CONTEXT } from "@opentelemetry/api";
import { HttpError } from "../../contracts/error.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { BackendMetrics } from "../../telemetry/metrics.ts";
import type { InjectedAnomaly, PlantStreams } from "./plant_streams.ts";
import { streamIds } from "./plant_streams.ts";
import { createProblemLog } from "./problem_log.ts";
import { createRunPace, type RunPace } from "./run_pace.ts";
import {
  delay,
  type EngineAnswer,
  engineError,
  type FailedAttempt,
  type FrameSender,
} from "./send_frame.ts";
import { checkPlan, checkRunStream, MAX_STREAM_SENSORS, type StreamPlan } from "./stream_plan.ts";

export type { PlannedAnomaly, PlannedMove, PlannedStop, StreamPlan } from "./stream_plan.ts";

export interface SimulatorStatus {
  running: boolean;
  plan: StreamPlan | null;
  started_at: string | null;
  /** Frames that went to the engine (answered, or failed after their retries). */
  frames_sent: number;
  /** Final engine answers by status code ("error" for unreachable). */
  answers: Record<string, number>;
  /** Attempts that failed and were tried again, counted as they happen. */
  retries: number;
  /** Frames not made because the stream's previous frame was still backing off for a retry. */
  skipped: number;
  /** Frames per stream per second sent over the last 5 s (null without a run). */
  achieved_hz: number | null;
  /** How far the run is behind its schedule: ticks it could not make in time are dropped (ms). */
  behind_ms: number | null;
  /** The last problem: `"<status> <code>: <message>"` for the engine's, or why a frame failed. */
  last_error: string | null;
  /** When `last_error` happened (ISO). */
  last_error_at: string | null;
  injected: readonly InjectedAnomaly[];
  /** Streams running at a moved operating point. */
  moved_streams: string[];
}

export interface SimulatorOptions {
  streams: PlantStreams;
  send: FrameSender;
  /** Sender used by the stream mode (with retries); defaults to `send`. */
  streamSend?: FrameSender;
  /** Frame timestamps (epoch ms); pacing runs on `performance.now()`. */
  now?: () => number;
  log?: Logger;
  metrics?: BackendMetrics;
  /** Most sensors a run's plants may hold together ({@link MAX_STREAM_SENSORS}). */
  maxStreamSensors?: number;
}

export type Simulator = ReturnType<typeof createSimulator>;

type RunStatus = Omit<SimulatorStatus, "injected" | "moved_streams" | "achieved_hz" | "behind_ms">;

interface Run {
  controller: AbortController;
  status: RunStatus;
  pace: RunPace;
  done: Promise<void>;
}

function freshStatus(plan: StreamPlan | null, startedAt: string | null): RunStatus {
  return {
    running: plan !== null,
    plan,
    started_at: startedAt,
    frames_sent: 0,
    answers: {},
    retries: 0,
    skipped: 0,
    last_error: null,
    last_error_at: null,
  };
}

/**
 * Creates the simulator. `sendOne` is `POST /data/send`; `start(plan)` runs the stream mode in
 * the background until its duration ends or `stop()`. Starts and stops take turns (each waits
 * for those asked for before it), so at most one run exists and `stop()` stops it.
 *
 * Each tick a run sends its streams' frames together and waits for their first answers (a slow
 * engine sets the pace, reported in `achieved_hz` and `behind_ms`); a frame backing off for a
 * retry holds up only its own stream, which skips its turns meanwhile (counted in `skipped`), so
 * one stream the engine turns away never stalls the rest. Problems set `last_error` and are
 * logged when they first come up, then at most once a minute each with a count.
 */
export function createSimulator(options: SimulatorOptions) {
  const { streams, send, log, metrics, maxStreamSensors = MAX_STREAM_SENSORS } = options;
  const streamSend = options.streamSend ?? send;
  const now = options.now ?? (() => Date.now());
  let run: Run | undefined;
  let status: RunStatus = freshStatus(null, null);
  let lastPace: RunPace | undefined;
  // Rate-limited warnings, afresh for each run: its first problem of a kind is logged at once.
  let notDelivered = createProblemLog("frame not delivered", { log });
  let fallingBehind = createProblemLog("simulator falling behind", { log });
  // The tail of the starts and stops asked for so far; each runs after the one before.
  let turns: Promise<unknown> = Promise.resolve();
  // Whether a run was asked to start or stop since creation (the start-up plan then stands down).
  let operated = false;

  function inTurn<T>(task: () => Promise<T>): Promise<T> {
    const result = turns.then(task);
    turns = result.catch(() => {});
    return result;
  }

  /** Records a problem of a stream's frame in `into` and, rate-limited, in the log. */
  function problem(
    into: RunStatus,
    streamId: string,
    what: { status?: number; code: string; message: string },
    more: Record<string, unknown> = {},
  ) {
    const { status: httpStatus, ...rest } = what;
    const prefix = httpStatus === undefined ? "" : `${httpStatus} `;
    into.last_error = `${prefix}${what.code}: ${what.message}`;
    into.last_error_at = new Date(now()).toISOString();
    notDelivered(what.code, { stream_id: streamId, status: httpStatus ?? null, ...rest, ...more });
  }

  /** A failed attempt that the sender tries again: counted and reported as it happens. */
  function retrying(into: RunStatus, streamId: string) {
    return function onRetry(failure: FailedAttempt) {
      into.retries++;
      const { attempt, waitMs, ...what } = failure;
      problem(into, streamId, what, { attempt, retrying: true, wait_ms: Math.round(waitMs) });
    };
  }

  /** Counts a frame's final answer (or `error`: not delivered) and reports a refusal. */
  function count(streamId: string, answer: EngineAnswer | Error, into: RunStatus = status) {
    const key = answer instanceof Error ? "error" : String(answer.status);
    into.answers[key] = (into.answers[key] ?? 0) + 1;
    metrics?.framesSent.add(1, { status: key });
    if (answer instanceof Error) {
      const code = answer instanceof HttpError ? answer.code : "engine_unreachable";
      problem(into, streamId, { code, message: answer.message }, { retrying: false });
    } else if (answer.status < 200 || answer.status > 299) {
      const refused = { status: answer.status, ...engineError(answer.status, answer.body) };
      problem(into, streamId, refused, { attempt: answer.attempts, retrying: false });
    }
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
    const into = status;
    let answer: EngineAnswer;
    try {
      answer = await send(frame.gzip, signal, { onRetry: retrying(into, streamId) });
    } catch (error) {
      if (!signal?.aborted) count(streamId, error as Error, into);
      throw error;
    }
    count(streamId, answer, into);
    return answer;
  }

  /**
   * Sends one frame of a run's stream and counts how it went (nothing once the run stopped).
   * `firstAnswered` is called once its first attempt is over: answered, or failed and retrying.
   */
  async function deliver(
    self: Run,
    streamId: string,
    gzip: Uint8Array,
    firstAnswered: () => void,
  ): Promise<void> {
    const { signal } = self.controller;
    const at = self.status;
    const onRetry = retrying(at, streamId);
    let answer: EngineAnswer | Error;
    try {
      answer = await streamSend(gzip, signal, {
        onRetry(failure) {
          onRetry(failure);
          firstAnswered();
        },
      });
    } catch (error) {
      if (signal.aborted) return;
      answer = error as Error;
    }
    count(streamId, answer, at);
    at.frames_sent++;
  }

  async function loop(plan: StreamPlan, self: Run) {
    const { signal } = self.controller;
    // After any wait: a run that is no longer the current one stops itself.
    const current = () => {
      if (run !== self) self.controller.abort(new Error("simulator run replaced"));
      return !signal.aborted;
    };
    // Each stream's frame on its way, until its last attempt is over (at most one a stream, so
    // its frames arrive in order).
    const inFlight = new Map<string, Promise<void>>();
    try {
      await ticks(plan, self, current, inFlight);
    } finally {
      await Promise.all(inFlight.values());
      self.pace.finish();
    }
  }

  async function ticks(
    plan: StreamPlan,
    self: Run,
    current: () => boolean,
    inFlight: Map<string, Promise<void>>,
  ) {
    const { signal } = self.controller;
    const { status: at, pace } = self;
    const ids = streamIds(plan.streams);
    const total =
      plan.duration_s === undefined ? Infinity : Math.round(plan.duration_s * plan.rate_hz);
    const every = Math.max(1, Math.round(plan.anomaly_every_s * plan.rate_hz));
    const kinds = plan.kinds?.length ? plan.kinds : undefined;
    // This tick's frames whose first attempt is not over yet.
    const answering: Promise<void>[] = [];
    for (let tick = 0; tick < total && current(); tick++) {
      for (const a of plan.anomalies ?? []) {
        if (a.at_frame !== tick) continue;
        const injected = streams.inject(a.stream_id ?? ids[0], a);
        log?.info("anomaly injected", withoutNulls(injected));
      }
      for (const stop of plan.stops ?? []) {
        if (stop.at_frame !== tick) continue;
        const streamId = stop.stream_id ?? ids[0];
        const running = streams.stop(streamId, stop.duration, stop.kind);
        log?.info(stop.kind === "sensor" ? "drive sensor dead" : "machine stopped", {
          stream_id: streamId,
          frames: stop.duration,
          running,
        });
      }
      for (const m of plan.moves ?? []) {
        if (m.at_frame === tick) moveStream(m.stream_id ?? ids[0], m.moved ?? true);
      }
      if (plan.anomaly_every_s > 0 && tick % every === Math.floor(every / 2)) {
        const kind = kinds?.[streams.pick(kinds.length)];
        // Capped at half a period so injected anomalies do not overlap.
        const maxDuration = Math.max(1, Math.floor(every / 2));
        const injected = streams.inject(ids[streams.pick(ids.length)], { kind, maxDuration });
        log?.info("anomaly injected", withoutNulls(injected));
      }
      for (const id of ids) {
        if (inFlight.has(id)) {
          at.skipped++;
          continue;
        }
        let frame: Awaited<ReturnType<PlantStreams["next"]>>;
        try {
          frame = await streams.next(id, now());
        } catch (error) {
          if (!current()) return;
          // The stream's anomalies are dropped with the frame; the run goes on without them.
          at.last_error = (error as Error).message;
          at.last_error_at = new Date(now()).toISOString();
          log?.warn("frame not generated", { stream_id: id, error: at.last_error });
          continue;
        }
        if (!current()) return;
        let firstAnswered = () => {};
        answering.push(new Promise<void>((resolve) => (firstAnswered = resolve)));
        const sending = deliver(self, id, frame.gzip, firstAnswered).finally(() => {
          inFlight.delete(id);
          firstAnswered();
        });
        inFlight.set(id, sending);
      }
      // A tick lasts until its frames are answered, as a slow engine sets the pace; a frame
      // backing off for a retry holds up only its own stream, whose turns it skips meanwhile.
      await Promise.all(answering.splice(0));
      const waitMs = pace.tickDone(at.frames_sent);
      if (pace.fallingBehind(at.frames_sent)) {
        fallingBehind("rate", {
          rate_hz: plan.rate_hz,
          achieved_hz: pace.achievedHz(at.frames_sent),
          behind_ms: pace.behindMs(),
          skipped: at.skipped,
          streams: plan.streams,
        });
      }
      if (waitMs > 0) await delay(waitMs, signal).catch(() => {});
    }
  }

  /** Moves `streamId`'s operating point from its next frame on (`moved` false: back); logged. */
  function moveStream(streamId: string, moved: boolean) {
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

  /**
   * Moves a stream's operating point (`moved` false: back) and says which stream. While a run
   * goes on the stream must be one of its (a `RangeError` otherwise: another would only make a
   * plant no frame of the run reads), and none named is its first; with no run, `"default"`.
   */
  function moveOperatingPoint(streamId: string | undefined, moved: boolean) {
    const plan = run?.status.running ? run.status.plan : null;
    const id = streamId ?? (plan ? streamIds(plan.streams)[0] : "default");
    if (plan) checkRunStream(plan.streams, id, "'stream_id'");
    return { streamId: id, move: moveStream(id, moved) };
  }

  /** Begins a run of `plan`; only in turn, with no run left. */
  function begin(plan: StreamPlan) {
    status = freshStatus(plan, new Date(now()).toISOString());
    notDelivered = createProblemLog("frame not delivered", { log });
    fallingBehind = createProblemLog("simulator falling behind", { log });
    const pace = createRunPace({ rateHz: plan.rate_hz, streams: plan.streams });
    lastPace = pace;
    const self: Run = { controller: new AbortController(), status, pace, done: Promise.resolve() };
    run = self;
    streams.keep(streamIds(plan.streams));
    log?.info("simulator streaming", { ...plan });
    // The run's own trace root: each frame is a trace of its own, not a child of whatever started
    // the run (a POST, or the start-up's readiness probe, whose span Deno keeps active for every
    // await after it: without this, a Deno backend sent all its frames in one endless trace).
    self.done = context
      .with(ROOT_CONTEXT, () => loop(plan, self))
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
    checkPlan(plan, streams.nFeatures, maxStreamSensors);
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
    checkPlan(plan, streams.nFeatures, maxStreamSensors);
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
      answers: { ...status.answers },
      achieved_hz: lastPace?.achievedHz(status.frames_sent) ?? null,
      behind_ms: lastPace?.behindMs() ?? null,
      injected: streams.groundTruth(),
      moved_streams: streams.movedStreams(),
    }),
  };
}

/** A log line's fields without those not known yet (an injected anomaly's times come with its frames). */
function withoutNulls(fields: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null));
}
