// Records one model's scored frames for retraining: decimated runs, incident frames tagged once known, silences left out.
import { createHash, randomBytes } from "node:crypto";
import type { ModelMetadata } from "../../contracts/model.ts";
import type { Silence } from "../../contracts/silence.ts";
import { compileGlob } from "../../contracts/silence_match.ts";
import type { IncidentVerdict } from "../../contracts/verdict_feed.ts";
import type { ScoredBatch } from "../batch/window_scorer.ts";
import type { HistorySpan } from "../evidence/history_store.ts";
import { warnOften } from "./_warn_often.ts";
import { encodeFrame, encodeHeader, type HistoryFrame } from "./chunk_format.ts";
import { ChunkWriter, type ChunkWriterOptions } from "./chunk_writer.ts";
import {
  type HistoryIndex,
  type IndexedIncident,
  type IndexedSilence,
  indexedSilenceEnd,
  readIndex,
  writeIndex,
} from "./history_index.ts";
import type { WindowIncidents } from "./window_incidents.ts";

/** Where a scored window's newest frame is read from (the engine's `HistoryStore`). */
export interface FrameSource {
  span(streamId: string, from: number, to: number): HistorySpan | undefined;
}

/** The few logger methods the recorder uses. */
export interface RecorderLog {
  info?(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, error?: Error, fields?: Record<string, unknown>): void;
}

export type RecordedModel = Pick<
  ModelMetadata,
  "name" | "version" | "n_features" | "feature_names" | "window_size"
>;

export interface HistoryRecorderOptions {
  /** This model's folder (`HISTORY_DIR/<name>`). */
  dir: string;
  model: RecordedModel;
  /** Bytes of chunks at most (`HISTORY_MAX_BYTES`). */
  maxBytes: number;
  /** One run in every `everyN` is kept (`HISTORY_EVERY_N`), runs of `runFrames` (`HISTORY_RUN_FRAMES`). */
  everyN: number;
  runFrames: number;
  /** Why a stream's frame at `at` must not be recorded (a silence, the machine off), or undefined. */
  excluded?: (streamId: string, at: number) => string | undefined;
  /** Operators' current verdict on an incident (engine/decisions `verdictOf`). */
  verdictOf?: (incidentId: string) => IncidentVerdict | undefined;
  /**
   * The silences in the engine's copy (engine/decisions `silences`), undefined while none is
   * held: those covering this model are kept in `index.json` at every flush, so the reader also
   * leaves out frames recorded before a silence was known (one created with a past `starts_at`).
   */
  silences?: () => readonly Silence[] | undefined;
  log?: RecorderLog;
  /** Queued bytes that trigger a write at once (default 1 MiB); otherwise `flush()` on a timer. */
  flushBytes?: number;
  /**
   * Streams tracked at most (default {@link DEFAULT_MAX_STREAMS}; `historyRecordersFor` gives
   * `max(4096, MAX_STREAMS)`): beyond it the least recently scored one is forgotten, its held
   * frames dropped, with a warning.
   */
  maxStreams?: number;
  /** The clock the warnings are rate-limited by (default `Date.now`). */
  now?: () => number;
  /** How chunk files are opened and their disk's room measured (`ChunkWriter`'s): a test gives a disk of its own size. */
  disk?: Pick<ChunkWriterOptions, "open" | "statfs">;
}

interface StreamState {
  /**
   * The next window's position in this session: windows scored so far, plus one skipped at
   * every machine stop, so frames either side of a stop are never read as adjacent.
   */
  seq: number;
  /** Which of every `everyN` runs is kept ({@link runPhase}). */
  phase: number;
  /** Kept frames whose incident membership is not known yet, oldest first. */
  held: HistoryFrame[];
  /**
   * The flagged windows of the last {@link MAX_CONFIRM_N} (timestamp, seq), oldest first, while
   * the alert path holds the stream: an incident's start is one of them, and its seq says where
   * its first window begins even when that window's own frame was not kept (outside a run,
   * excluded, or no longer in the frame store).
   */
  hits: { timestamp: number; seq: number }[];
  /** Stream time of the previous window, while the next step can be measured from it (else NaN). */
  last: number;
  /** Steps measured so far (ms), until {@link STEP_SAMPLES} give `stepMs`. */
  steps: number[];
  /** The stream's frame interval (ms) its runs are laid out with ({@link runOf}); 0 until measured. */
  stepMs: number;
}

/** Held frames per stream at most (confirmation needs `INCIDENT_CONFIRM_N` <= 64 windows, a window <= 1,024 frames). */
const MAX_HELD = 2048;
/** Streams tracked at most unless told ({@link HistoryRecorderOptions.maxStreams}). */
export const DEFAULT_MAX_STREAMS = 4096;
/** The tracker's largest `INCIDENT_CONFIRM_N`: an incident starts within that many windows of its opening. */
const MAX_CONFIRM_N = 64;
/**
 * How often at most an index.json of {@link INDEX_SMALL_BYTES} or more is rewritten for counts
 * alone (new incidents and verdicts go at once).
 */
export const INDEX_COUNTS_MS = 30_000;
/** An index.json under this size is rewritten for counts at the next flush: cheap, and current. */
export const INDEX_SMALL_BYTES = 64 * 1024;
/** Steps between a stream's windows whose median is its frame interval (`stepMs`). */
const STEP_SAMPLES = 5;
const EMPTY = new Int32Array(0);

/**
 * Which run of a stream a window at `timestamp` falls in: runs are laid out on the stream's own
 * clock, `runFrames` frame intervals (`stepMs`) long, from the epoch. Frame time, not a count of
 * windows: a machine stop, an engine restart or a partition moving to another worker changes
 * nothing of which stretches of a stream are kept, so a machine that runs an hour at a time is
 * sampled all through its hours, not only just after each start.
 */
export const runOf = (timestamp: number, runFrames: number, stepMs: number): number =>
  Math.floor(timestamp / (runFrames * stepMs));

/** Whether run `run` of a stream of phase `phase` is one of the kept ones. */
const keptRun = (run: number, phase: number, everyN: number) =>
  (((run + phase) % everyN) + everyN) % everyN === 0;

/** The median of `steps`, rounded to the millisecond (at least 1). */
function medianStep(steps: number[]): number {
  const sorted = steps.toSorted((a, b) => a - b);
  return Math.max(1, Math.round(sorted[sorted.length >> 1]));
}

/**
 * Which of every `everyN` runs of a stream is kept: `(run + phase) % everyN === 0`, the phase
 * from the stream id (FNV-1a), so streams record at different times (no burst of every stream's
 * frames at once, and a short run of the engine is not all recorded); 0 when `everyN` is 1.
 */
export function runPhase(streamId: string, everyN: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < streamId.length; i++) {
    h ^= streamId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % everyN;
}

export const featuresSha256 = (names: readonly string[]) =>
  createHash("sha256").update(names.join("\n")).digest("hex");

/** The header of the chunks `model`'s frames go into, dated when each chunk is started. */
function chunkHeaderOf(model: RecordedModel, sha: string): () => Uint8Array {
  return function chunkHeader() {
    return encodeHeader({
      model: model.name,
      n_features: model.n_features,
      features_sha256: sha,
      created_at: new Date().toISOString(),
    });
  };
}

/**
 * A model's training history. Every scored window comes with what the alert path decided of it
 * ({@link WindowIncidents}: the incident it is part of, whether one is confirming): the recorder
 * runs no tracker of its own, so its incident ids are the alerts' ids, after a restart or a
 * takeover too. The window's newest frame, when it falls in a kept run ({@link runOf}), is
 * copied from the frame store and
 *
 * - held back until no later window can belong to an incident: `window_size - 1` windows when
 *   nothing is confirming, longer while an incident confirms (at most `INCIDENT_CONFIRM_N`);
 * - then written clean, or tagged with the incident's id when it is part of one of its windows:
 *   from the first frame of the window the incident started at to the window that resolves it.
 *
 * Without incidents (`ALERT_MODE=frame`: each flagged window is an alert of its own, no verdict
 * can judge it) the frames of every flagged window are left out, counted as `anomalous`.
 *
 * The reader leaves tagged frames out unless the incident's verdict (kept in `index.json`,
 * refreshed from `verdictOf` at every flush) is `false_positive`. Frames `excluded` names a
 * reason for are not recorded, and counted by reason. Costs on the scoring path: a few
 * comparisons per window, and per kept frame one copy into an encoded record; writes happen in
 * `flush`.
 */
export class HistoryRecorder {
  readonly #o: HistoryRecorderOptions;
  readonly #writer: ChunkWriter;
  readonly #session = randomBytes(4).readUInt32LE(0);
  /** Least recently scored first: a stream is moved to the end at each of its windows. */
  readonly #streams = new Map<string, StreamState>();
  readonly #maxStreams: number;
  readonly #streamDropped: (count: number, fields: Record<string, unknown>) => void;
  readonly #diskFull: (count: number, fields: Record<string, unknown>) => void;
  #model: RecordedModel;
  #sha: string;
  #index: HistoryIndex | undefined;
  /** Counted before the index is loaded, added to it then. */
  #pending: { excluded: Record<string, number>; dropped: number } = { excluded: {}, dropped: 0 };
  /** Incidents tagged since the index was last saved. */
  readonly #tagged = new Map<string, IndexedIncident>();
  /**
   * index.json lacks something the reader needs: an incident the chunks tag and it does not
   * name (their frames would stay out of training), or a verdict that changed. Written at the
   * next flush. Set at the start: the first flush writes the index once, so every writer's
   * folder has one. Cleared, as {@link #indexBehind}, only once a write of it succeeded, so an
   * idle recorder writes nothing and a failed write is tried again at the next flush.
   */
  #indexNeeded = true;
  /**
   * index.json is only behind on counts (exclusions, dropped chunks, an incident's frames) or
   * still names incidents whose frames are all gone: written at the next flush while it is
   * small, else at most every {@link INDEX_COUNTS_MS}, and at close, not at every flush that
   * counted a frame.
   */
  #indexBehind = false;
  #indexWrittenAt = Number.NEGATIVE_INFINITY;
  /** The size of the index last written. */
  #indexBytes = 0;
  readonly #now: () => number;
  #failing = false;
  #flushing: Promise<void> | undefined;
  /** Whether a silence's sensor globs touch the model's sensors, by silence id and sensors' hash. */
  readonly #touches = new Map<string, boolean>();

  constructor(options: HistoryRecorderOptions) {
    for (const [name, value] of [
      ["HISTORY_EVERY_N", options.everyN],
      ["HISTORY_RUN_FRAMES", options.runFrames],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`'${name}' must be an integer >= 1, got ${value}`);
      }
    }
    const maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
    if (!Number.isInteger(maxStreams) || maxStreams < 1) {
      throw new RangeError(`'MAX_STREAMS' must be an integer >= 1, got ${maxStreams}`);
    }
    this.#maxStreams = maxStreams;
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#model = options.model;
    this.#streamDropped = warnOften(
      options.log?.warn.bind(options.log),
      "training history forgets streams for room: more streams are scored than it tracks; a forgotten stream's held frames are dropped and it records nothing until it is measured again",
      "streams_dropped",
      options.now ?? Date.now,
    );
    this.#diskFull = warnOften(
      options.log?.warn.bind(options.log),
      "training history's disk is full: its oldest chunks are deleted for room, and it keeps within a lower bound until the disk has room again",
      "chunks_dropped",
      options.now ?? Date.now,
    );
    this.#sha = featuresSha256(options.model.feature_names);
    this.#writer = new ChunkWriter({
      dir: options.dir,
      maxBytes: options.maxBytes,
      header: chunkHeaderOf(options.model, this.#sha),
      ...options.disk,
      onDrop: (files) => {
        this.#pending.dropped += files.length;
      },
      onFull: (full) => {
        this.#diskFull(full.dropped.length, {
          model: this.#model.name,
          dir: options.dir,
          bound_bytes: full.bound,
          history_max_bytes: options.maxBytes,
          freed_bytes: full.freed,
        });
      },
    });
  }

  /** This model's folder. */
  get dir(): string {
    return this.#o.dir;
  }

  /** Bytes of history on disk and queued. */
  get bytes(): number {
    return this.#writer.bytes + this.#writer.queuedBytes;
  }

  /**
   * Takes one scored batch of this model (synchronously: the batch's buffers are reused after
   * it returns). `frames` holds each window's newest frame; `model` is the version that scored;
   * `incidents` what the alert path decided of each window (undefined: `ALERT_MODE=frame`).
   */
  scored(
    batch: ScoredBatch,
    frames: FrameSource,
    model: RecordedModel,
    incidents: WindowIncidents | undefined,
  ): void {
    if (model !== this.#model) this.#useModel(model);
    const reach = this.#model.window_size - 1;
    for (let r = 0; r < batch.size; r++) {
      const streamId = batch.streamIds[r];
      const timestamp = batch.timestamps[r];
      const s = this.#stream(streamId);
      const seq = s.seq++;
      this.#measure(s, timestamp);
      const from = batch.flaggedFrom[r];
      const to = batch.flaggedFrom[r + 1];
      const flagged = to > from ? batch.flagged.subarray(from, to) : EMPTY;
      const frame = this.#kept(s, timestamp)
        ? this.#frame(streamId, timestamp, seq, frames)
        : undefined;
      if (!incidents) {
        this.#frameMode(s, seq, frame, flagged.length > 0);
        continue;
      }
      const holding = incidents.holding[r] === 1;
      this.#noteHit(s, timestamp, seq, flagged.length > 0, holding);
      if (frame) s.held.push(frame);
      const incident = incidents.incident[r];
      const openedAt = incidents.openedAt[r];
      if (!Number.isNaN(openedAt)) {
        this.#release(s, Number.POSITIVE_INFINITY, {
          incidentId: incident,
          firstSeq: this.#firstSeqOf(s, openedAt),
        });
      }
      if (incident) {
        // Inside an incident: every frame of its windows is tagged at once.
        for (const f of s.held) this.#write(f, incident);
        s.held = [];
      } else if (!holding) {
        // Nothing confirming: frames no later window's start can reach are clean.
        this.#release(s, seq - reach);
      }
      if (s.held.length > MAX_HELD) s.held.shift();
    }
    if (this.#writer.queuedBytes >= (this.#o.flushBytes ?? 2 ** 20)) void this.flush();
  }

  /**
   * `ALERT_MODE=frame`: a flagged window's frames (its newest and the `window_size - 1` before
   * it) are left out, counted as `anomalous`; the others are clean once no later window holds them.
   */
  #frameMode(s: StreamState, seq: number, frame: HistoryFrame | undefined, flagged: boolean): void {
    const reach = this.#model.window_size - 1;
    if (!flagged) {
      if (frame) s.held.push(frame);
      this.#release(s, seq - reach);
      return;
    }
    let kept = 0;
    for (const f of s.held) {
      if (f.seq >= seq - reach) this.#count("anomalous");
      else s.held[kept++] = f;
    }
    s.held.length = kept;
    if (frame) this.#count("anomalous");
  }

  /**
   * Writes what is queued and refreshes the index (incident verdicts, exclusion counts). A
   * failed write is logged once (until one works again) and loses only what it was writing.
   */
  flush(): Promise<void> {
    return this.#flush(false);
  }

  /** {@link flush}; `closing`: counts the index is behind on are written too. */
  #flush(closing: boolean): Promise<void> {
    this.#flushing = (this.#flushing ?? Promise.resolve()).then(async () => {
      try {
        await this.#writer.flush();
        await this.#saveIndex(closing);
        if (this.#failing) this.#o.log?.warn("training history is written again", {});
        this.#failing = false;
      } catch (error) {
        if (!this.#failing) {
          this.#o.log?.error("training history could not be written", error as Error, {
            model: this.#model.name,
            dir: this.#o.dir,
          });
        }
        this.#failing = true;
      }
    });
    return this.#flushing;
  }

  /**
   * The machine of `streamId` stopped (the model's running condition failed), after every window
   * of it before the stop was handed over: its windows start afresh after it, so none of them
   * holds a frame held now, and the alert path ended its incident (or the confirmation) there.
   * Held frames are written clean (an incident open at the stop tagged its frames as they came),
   * and the stream's `seq` skips one, so the frames either side are not read as one run; which
   * runs are kept goes on unchanged (stream time).
   */
  machineStopped(streamId: string): void {
    const s = this.#streams.get(streamId);
    if (!s) return;
    this.#release(s, Number.POSITIVE_INFINITY);
    s.hits.length = 0;
    s.seq++;
    s.last = Number.NaN;
  }

  /**
   * Forgets a stream this process no longer scores (a scale-out worker gave its partition up):
   * its held frames are dropped unwritten (the windows that would decide them are scored by the
   * next owner). Should it come back, its `seq` starts again (a new run for the reader); which
   * runs are kept does not change (stream time).
   */
  forget(streamId: string): void {
    this.#streams.delete(streamId);
  }

  /** Writes what is queued (held frames stay unwritten: their membership is unknown) and closes the chunk. */
  async close(): Promise<void> {
    await this.#flush(true);
    await this.#writer.close().catch(() => {});
  }

  #stream(streamId: string): StreamState {
    let s = this.#streams.get(streamId);
    if (s) {
      // To the end of the map's order, so the first key is the least recently scored stream
      // and a stream scored all along is never the one forgotten.
      this.#streams.delete(streamId);
      this.#streams.set(streamId, s);
      return s;
    }
    if (this.#streams.size >= this.#maxStreams) {
      const [oldest] = this.#streams.keys();
      this.#streams.delete(oldest);
      this.#streamDropped(1, { model: this.#model.name, max_streams: this.#maxStreams });
    }
    s = {
      seq: 0,
      held: [],
      hits: [],
      phase: runPhase(streamId, this.#o.everyN),
      last: Number.NaN,
      steps: [],
      stepMs: 0,
    };
    this.#streams.set(streamId, s);
    return s;
  }

  /**
   * Measures the stream's frame interval: the median of its first {@link STEP_SAMPLES} steps
   * (none across a stop), then fixed, so its runs stay where they are.
   */
  #measure(s: StreamState, timestamp: number): void {
    if (s.stepMs > 0) return;
    if (timestamp > s.last) s.steps.push(timestamp - s.last);
    s.last = timestamp;
    if (s.steps.length < STEP_SAMPLES) return;
    s.stepMs = medianStep(s.steps);
    s.steps = [];
  }

  /** Whether the window at `timestamp` falls in one of the stream's kept runs. */
  #kept(s: StreamState, timestamp: number): boolean {
    const { everyN, runFrames } = this.#o;
    if (everyN === 1) return true;
    // Until its interval is known (its first few windows after a start), nothing is kept.
    if (s.stepMs === 0) return false;
    return keptRun(runOf(timestamp, runFrames, s.stepMs), s.phase, everyN);
  }

  #frame(
    streamId: string,
    timestamp: number,
    seq: number,
    frames: FrameSource,
  ): HistoryFrame | undefined {
    const reason = this.#o.excluded?.(streamId, timestamp);
    if (reason) {
      this.#count(reason);
      return undefined;
    }
    const span = frames.span(streamId, timestamp, timestamp);
    if (span?.length !== 1) {
      // Evicted from the frame store (more live streams than its memory holds).
      this.#count("frame_unavailable");
      return undefined;
    }
    // One copy of the frame (the store's row is reused once its ring wraps).
    const values = span.frame(0).slice(0, this.#model.n_features);
    return { streamId, timestamp, session: this.#session, seq, incident: "", values };
  }

  /** Keeps `s.hits` to the flagged windows an incident the alert path holds can still start at. */
  #noteHit(
    s: StreamState,
    timestamp: number,
    seq: number,
    flagged: boolean,
    holding: boolean,
  ): void {
    if (!holding) {
      // Nothing confirming or open: an incident opened later starts at a later hit.
      s.hits.length = 0;
      return;
    }
    if (flagged) s.hits.push({ timestamp, seq });
    while (s.hits.length > 0 && s.hits[0].seq <= seq - MAX_CONFIRM_N) s.hits.shift();
  }

  /**
   * The seq of the first frame of the window an incident started at (`startedAt`, a flagged
   * window's time): `window_size - 1` frames before that window's own. It is found among the
   * stream's recent hits, not its held frames, since the start's frame need not have been kept.
   * `-Infinity` (every held frame is the incident's) when the start is older than this
   * recorder's state of the stream (the alert path restored a confirming stream after a restart
   * or a takeover, or the recorder forgot it for room): every frame still held then came after
   * the start.
   */
  #firstSeqOf(s: StreamState, startedAt: number): number {
    // The earliest: a replayed window of the same time is ignored by the tracker.
    const start = s.hits.find((h) => h.timestamp === startedAt);
    return start ? start.seq - (this.#model.window_size - 1) : Number.NEGATIVE_INFINITY;
  }

  /**
   * Writes the held frames up to `seq` `before`: with `opened`, those from `firstSeq` on (the
   * incident's windows) tagged, the earlier ones clean.
   */
  #release(
    s: StreamState,
    before: number,
    opened?: { incidentId: string; firstSeq: number },
  ): void {
    let kept = 0;
    for (const frame of s.held) {
      if (frame.seq > before) {
        s.held[kept++] = frame;
        continue;
      }
      const tagged = opened && frame.seq >= opened.firstSeq;
      this.#write(frame, tagged ? opened.incidentId : "");
    }
    s.held.length = kept;
  }

  #write(frame: HistoryFrame, incident: string): void {
    frame.incident = incident;
    this.#writer.append(encodeFrame(frame), frame.timestamp);
    if (!incident) return;
    const t = this.#tagged.get(incident);
    if (t) {
      t.first = Math.min(t.first, frame.timestamp);
      t.last = Math.max(t.last, frame.timestamp);
      t.frames++;
    } else {
      const at = frame.timestamp;
      this.#tagged.set(incident, {
        stream: frame.streamId,
        first: at,
        last: at,
        frames: 1,
        verdict: null,
      });
    }
  }

  #count(reason: string): void {
    const key = reason.split(":")[0];
    this.#pending.excluded[key] = (this.#pending.excluded[key] ?? 0) + 1;
  }

  async #saveIndex(closing: boolean): Promise<void> {
    this.#index ??= await readIndex(this.#o.dir, this.#model.name, (problem, keptAs) =>
      this.#o.log?.warn(
        "training history index unusable; starting a new one (frames tagged with incidents it named stay out of training)",
        { model: this.#model.name, problem, kept_as: keptAs ?? null },
      ),
    );
    const index = this.#index;
    if (this.#pending.dropped || Object.keys(this.#pending.excluded).length) {
      this.#indexBehind = true;
    }
    for (const [id, entry] of this.#tagged) {
      const known = index.incidents[id];
      if (!known) {
        index.incidents[id] = entry;
        this.#indexNeeded = true;
      } else {
        known.first = Math.min(known.first, entry.first);
        known.last = Math.max(known.last, entry.last);
        known.frames += entry.frames;
        this.#indexBehind = true;
      }
    }
    this.#tagged.clear();
    // An incident whose frames all came before the oldest one left (on disk, queued or being
    // written) has none left: dropped chunks took them. Naming it would only grow the index.
    const oldest = this.#writer.oldest;
    for (const [id, entry] of Object.entries(index.incidents)) {
      if (entry.last >= oldest) continue;
      delete index.incidents[id];
      this.#indexBehind = true;
    }
    for (const [reason, n] of Object.entries(this.#pending.excluded)) {
      index.excluded[reason] = (index.excluded[reason] ?? 0) + n;
    }
    index.dropped_chunks += this.#pending.dropped;
    this.#pending = { excluded: {}, dropped: 0 };
    const verdictOf = this.#o.verdictOf;
    if (verdictOf) {
      // Verdicts are superseded, never withdrawn: an incident the copy does not name (no copy
      // held, a corrupt one, or the backend pruned it) keeps the verdict it had.
      for (const [id, entry] of Object.entries(index.incidents)) {
        const verdict = verdictOf(id);
        if (verdict !== undefined && verdict !== entry.verdict) {
          entry.verdict = verdict;
          this.#indexNeeded = true;
        }
      }
    }
    this.#keepSilences(index, oldest);
    const now = this.#now();
    const countsDue =
      closing ||
      this.#indexBytes < INDEX_SMALL_BYTES ||
      now - this.#indexWrittenAt >= INDEX_COUNTS_MS;
    if (!this.#indexNeeded && !(this.#indexBehind && countsDue)) return;
    index.updated_at = new Date().toISOString();
    // After the chunks of this flush: index.json never names fewer incidents than the chunks
    // on disk tag (a tagged frame the index does not name stays out of training). Fsync'd when
    // it names a new incident or verdict, which a power cut must not take back; counts alone
    // may lose their last few seconds.
    this.#indexBytes = await writeIndex(this.#o.dir, index, { durable: this.#indexNeeded });
    this.#indexNeeded = false;
    this.#indexBehind = false;
    this.#indexWrittenAt = now;
  }

  /**
   * Brings `index.silences` up to the engine's copy: each silence touching this model's sensors
   * whose span reaches the oldest frame kept (a changed one, expired say, replaced); those whose
   * span ended before it are dropped. A silence the copy no longer lists (the backend serves
   * those that ended within a day) stays while its frames do.
   */
  #keepSilences(index: HistoryIndex, oldest: number): void {
    for (const [id, kept] of Object.entries(index.silences ?? {})) {
      if (indexedSilenceEnd(kept) >= oldest) continue;
      delete index.silences?.[id];
      this.#indexBehind = true;
    }
    const feed = this.#o.silences?.();
    if (!feed) return;
    for (const s of feed) {
      const entry: IndexedSilence = {
        stream: s.matchers.stream,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        expired_at: s.expired_at,
        recurrence: s.recurrence,
      };
      if (indexedSilenceEnd(entry) < oldest || !this.#touchesModel(s)) continue;
      const known = index.silences?.[s.silence_id];
      if (known && JSON.stringify(known) === JSON.stringify(entry)) continue;
      index.silences ??= {};
      index.silences[s.silence_id] = entry;
      // A decision that keeps frames out of training: written at this flush, fsync'd.
      this.#indexNeeded = true;
    }
    if (this.#touches.size > 4 * feed.length + 64) this.#touches.clear();
  }

  /** Whether `s` covers any of this model's sensors (a silence with no sensor globs covers all). */
  #touchesModel(s: Silence): boolean {
    if (s.matchers.sensors.length === 0) return true;
    const key = `${s.silence_id}\n${this.#sha}`;
    let touches = this.#touches.get(key);
    if (touches === undefined) {
      const globs = s.matchers.sensors.map(compileGlob);
      touches = this.#model.feature_names.some((name) => globs.some((g) => g.test(name)));
      this.#touches.set(key, touches);
    }
    return touches;
  }

  #useModel(model: RecordedModel): void {
    const sha = featuresSha256(model.feature_names);
    this.#model = model;
    // Another version with the same features goes on as it was (the alert path names its ids).
    if (sha === this.#sha) return;
    // Other features: fresh chunks (their header names the features), streams afresh. The
    // frames the old version scored, queued or being written, stay under the old header.
    this.#sha = sha;
    this.#streams.clear();
    void this.#writer.useHeader(chunkHeaderOf(model, sha)).catch(() => {});
  }
}
