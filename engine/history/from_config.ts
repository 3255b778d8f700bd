// The training history as the engine's configuration describes it: a recorder per served model, flushed every second.
import { join } from "node:path";
import type { EngineConfig } from "../../contracts/config.ts";
import type { ScoredBatch } from "../batch/window_scorer.ts";
import type { DecisionsClient } from "../decisions/decisions_client.ts";
import { diskRoomOf } from "./_disk_room.ts";
import {
  DEFAULT_MAX_STREAMS,
  type FrameSource,
  HistoryRecorder,
  type RecordedModel,
  type RecorderLog,
} from "./history_recorder.ts";
import { SilenceExclusion } from "./silence_exclusion.ts";
import type { WindowIncidents } from "./window_incidents.ts";

/** How often queued records are written and the index refreshed. */
const FLUSH_MS = 1000;

/** `HISTORY_DIR`, or `DATA_DIR/history` when it is empty. */
export function historyDirOf(config: Pick<EngineConfig, "HISTORY_DIR" | "DATA_DIR">): string {
  return config.HISTORY_DIR || join(config.DATA_DIR, "history");
}

/** A served model's lane as the recorders see it: the model that scored, and its frame store. */
export interface RecordedLane {
  model: { metadata: RecordedModel };
  history: FrameSource;
}

/** Every served model's recorder, by model name, each in `HISTORY_DIR/<name>` (or its writer's folder there). */
export interface HistoryRecorders {
  /**
   * Records a scored batch of `lane`'s model (synchronously; writes happen on the timer), with
   * what its alert pipeline decided of each window (`AlertPipeline.scored(...).incidents`).
   */
  scored(
    batch: ScoredBatch,
    lane: RecordedLane | undefined,
    incidents: WindowIncidents | undefined,
  ): void;
  /** Forgets `model`'s streams this process no longer scores (`HistoryRecorder.forget`). */
  forget(model: string, streamIds: Iterable<string>): void;
  /** `model`'s stream `streamId` stopped, after its last window before the stop (`HistoryRecorder.machineStopped`). */
  machineStopped(model: string, streamId: string): void;
  /** Writes everything queued and closes the chunks. */
  close(): Promise<void>;
}

/** The folder of one writer among several sharing `HISTORY_DIR/<model>` (a scale-out worker's). */
export const writerFolder = (writer: string) => `worker-${writer}`;

/**
 * The recorders, or `undefined` when `HISTORY_MAX_BYTES` is 0. Silences come from `decisions`
 * (when the engine pulls them); `running` is the machine-off hook: a frame of a stream that is
 * not running at `at` is not recorded (counted as `machine_off`). With `writer` (a scale-out
 * worker's id, stable across its restarts) each model's history goes to
 * `HISTORY_DIR/<model>/worker-<writer>/`, chunks and index of its own, so workers sharing one
 * `HISTORY_DIR` never write the same file; `readHistory` reads every writer's folder.
 */
export function historyRecordersFor(
  config: Pick<
    EngineConfig,
    | "HISTORY_DIR"
    | "DATA_DIR"
    | "HISTORY_MAX_BYTES"
    | "HISTORY_EVERY_N"
    | "HISTORY_RUN_FRAMES"
    | "MAX_STREAMS"
  >,
  deps: {
    log?: RecorderLog;
    decisions?: Pick<
      DecisionsClient,
      "silencedAt" | "silencedAtAny" | "silences" | "verdictOf" | "status"
    >;
    running?: (model: string, streamId: string, at: number) => boolean;
    writer?: string;
    /**
     * The models this process serves now (those it loaded: a scale-out worker's own), asked at
     * every flush: each has its recorder from then on, scored or not, so its index takes the
     * verdicts and silences given since the engine started while nothing of it is scored (a
     * restart during a plant stop). Without it, a recorder starts with the model's first
     * scored window.
     */
    served?: () => Iterable<RecordedModel>;
  } = {},
): HistoryRecorders | undefined {
  if (config.HISTORY_MAX_BYTES === 0) return undefined;
  const root = historyDirOf(config);
  const recorders = new Map<string, HistoryRecorder>();
  // The engine admits MAX_STREAMS streams of a model (each scale-out partition as many): the
  // recorder tracks at least as many, or streams scored in turn would each be forgotten before
  // their interval is measured and nothing of them would ever be recorded.
  const maxStreams = Math.max(DEFAULT_MAX_STREAMS, config.MAX_STREAMS);
  const timer = setInterval(() => {
    // A recorder created here writes nothing but its index (one write at its first flush, then
    // at each change of a verdict or silence): chunks start with the first frame it keeps.
    if (deps.served) for (const model of deps.served()) recorderOf(model);
    for (const r of recorders.values()) void r.flush();
  }, FLUSH_MS);
  (timer as { unref?: () => void }).unref?.();

  function recorderOf(model: RecordedModel): HistoryRecorder {
    let recorder = recorders.get(model.name);
    if (recorder) return recorder;
    const name = model.name;
    // One per model: its answers are about that model's sensors, kept for as many streams.
    const silences = deps.decisions ? new SilenceExclusion(deps.decisions, maxStreams) : undefined;
    recorder = new HistoryRecorder({
      dir: deps.writer ? join(root, name, writerFolder(deps.writer)) : join(root, name),
      model,
      maxBytes: config.HISTORY_MAX_BYTES,
      everyN: config.HISTORY_EVERY_N,
      runFrames: config.HISTORY_RUN_FRAMES,
      maxStreams,
      excluded(streamId, at) {
        if (deps.running && !deps.running(name, streamId, at)) return "machine_off";
        return silences?.reason(streamId, at, current.get(name) ?? []);
      },
      verdictOf: deps.decisions ? (id) => deps.decisions?.verdictOf(id) : undefined,
      silences: deps.decisions ? () => deps.decisions?.silences() : undefined,
      log: deps.log,
    });
    recorders.set(name, recorder);
    checking.add(checkRoom());
    return recorder;
  }
  /** Room checks not finished yet (`close` waits for them, so none logs after it). */
  const checking = new Set<Promise<void>>();
  /**
   * Warns when the models recorded so far may take more than their disk has free: a full disk
   * is relieved by deleting the oldest chunks, but the other files on it (the alert outbox under
   * `DATA_DIR`) may meet it first. Checked as each model's recorder is made: at start for
   * the models served (`served`), else at its first scored window.
   */
  async function checkRoom(): Promise<void> {
    const dirs = [...recorders.values()].map((r) => r.dir);
    const room = await diskRoomOf(dirs, config.HISTORY_MAX_BYTES).catch(() => undefined);
    if (room && room.need > room.free + room.held) {
      deps.log?.warn(
        `training history may fill its disk: ${dirs.length} model(s) × HISTORY_MAX_BYTES take up to ${room.need} bytes, but ${room.free} bytes are free under ${root} (and ${room.held} bytes of history are there already); on a full disk the oldest chunks are deleted for room, and other files there may fail to be written`,
        {
          models: dirs.length,
          history_max_bytes: config.HISTORY_MAX_BYTES,
          need_bytes: room.need,
          free_bytes: room.free,
          history_bytes: room.held,
          dir: root,
        },
      );
    }
  }
  /** The feature names each model is recorded with now (its silences are asked about them). */
  const current = new Map<string, readonly string[]>();
  const silencesKnown = silencesWatch(deps);

  return {
    scored(batch, lane, incidents) {
      if (!lane) return;
      silencesKnown();
      const meta = lane.model.metadata;
      current.set(meta.name, meta.feature_names);
      recorderOf(meta).scored(batch, lane.history, meta, incidents);
    },
    machineStopped(model, streamId) {
      recorders.get(model)?.machineStopped(streamId);
    },
    forget(model, streamIds) {
      const recorder = recorders.get(model);
      if (recorder) for (const streamId of streamIds) recorder.forget(streamId);
    },
    async close() {
      clearInterval(timer);
      await Promise.all([...checking, ...[...recorders.values()].map((r) => r.close())]);
    },
  };
}

/**
 * Says once when frames are recorded while no silences copy was ever pulled (a fresh engine with
 * the backend down: silenced periods go into the history as training data until one is), and
 * once when a copy is held; with the client off, one line that decisions are not consulted.
 * Returns the check the recorders run per batch (a flag test once a copy is held).
 */
function silencesWatch(deps: {
  log?: RecorderLog;
  decisions?: Pick<DecisionsClient, "status">;
}): () => void {
  const { log, decisions } = deps;
  let said = false;
  let held = false;
  return function silencesKnown() {
    if (held) return;
    if (!decisions) {
      held = true;
      log?.info?.(
        "training history is recorded without operators' decisions (DECISIONS_POLL_S=0): silenced periods are not left out",
        {},
      );
      return;
    }
    const status = decisions.status().silences;
    if (status.held) {
      held = true;
      if (said) log?.info?.("silences copy held: training history leaves silenced frames out", {});
      return;
    }
    if (said) return;
    said = true;
    log?.warn(
      "training history is recorded with no silences copy: none was ever pulled from the backend, so frames are recorded whatever silences cover them; once a copy is held, its silences are left out when the history is read for training",
      { last_error: status.last_error, last: status.last },
    );
  };
}
