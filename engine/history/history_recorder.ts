// Records one model's scored frames for retraining: decimated runs, incident frames tagged once known, silences left out.
import { createHash, randomBytes } from "node:crypto";
import type { ModelMetadata } from "../../contracts/model.ts";
import type { IncidentVerdict } from "../../contracts/verdict_feed.ts";
import type { IncidentTracker } from "../../scoring/incident_tracker.ts";
import type { ScoredBatch } from "../batch/window_scorer.ts";
import type { HistorySpan } from "../evidence/history_store.ts";
import { encodeFrame, encodeHeader, type HistoryFrame } from "./chunk_format.ts";
import { ChunkWriter } from "./chunk_writer.ts";
import { type HistoryIndex, type IndexedIncident, readIndex, writeIndex } from "./history_index.ts";

/** Where a scored window's newest frame is read from (the engine's `HistoryStore`). */
export interface FrameSource {
  span(streamId: string, from: number, to: number): HistorySpan | undefined;
}

/** The few logger methods the recorder uses. */
export interface RecorderLog {
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
  /** The incident tracker the alert path runs, configured the same (a fresh one per model). */
  tracker: (model: RecordedModel) => IncidentTracker;
  /** Why a stream's frame at `at` must not be recorded (a silence, the machine off), or undefined. */
  excluded?: (streamId: string, at: number) => string | undefined;
  /** Operators' current verdict on an incident (engine/decisions `verdictOf`). */
  verdictOf?: (incidentId: string) => IncidentVerdict | undefined;
  log?: RecorderLog;
  /** Queued bytes that trigger a write at once (default 1 MiB); otherwise `flush()` on a timer. */
  flushBytes?: number;
}

interface StreamState {
  /** Windows scored so far in this session: the next frame's `seq`. */
  seq: number;
  /** Which of every `everyN` runs is kept ({@link runPhase}). */
  phase: number;
  /** Kept frames whose incident membership is not known yet, oldest first. */
  held: HistoryFrame[];
  open: { id: string; startedAt: number } | undefined;
  /**
   * The flagged windows of the last {@link MAX_CONFIRM_N} (timestamp, seq), oldest first, while
   * the tracker holds the stream: an incident's start is one of them, and its seq says where its
   * first window begins even when that window's own frame was not kept (outside a run, excluded,
   * or no longer in the frame store).
   */
  hits: { timestamp: number; seq: number }[];
}

/** Held frames per stream at most (confirmation needs `INCIDENT_CONFIRM_N` <= 64 windows, a window <= 1,024 frames). */
const MAX_HELD = 2048;
/** Streams tracked at most; the least recently seen one is forgotten beyond it. */
const MAX_STREAMS = 4096;
/** The tracker's largest `INCIDENT_CONFIRM_N`: an incident starts within that many windows of its opening. */
const MAX_CONFIRM_N = 64;
const EMPTY = new Int32Array(0);

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
 * A model's training history. For every scored window it runs the same incident tracker as
 * the alert path on the window's flagged sensors; the window's newest frame, when it falls in a
 * kept run, is copied from the frame store and
 *
 * - held back until no later window can belong to an incident: `window_size - 1` windows when
 *   nothing is confirming, longer while an incident confirms (at most `INCIDENT_CONFIRM_N`);
 * - then written clean, or tagged with the incident's id when it is part of one of its windows:
 *   from the first frame of the window the incident started at to the window that resolves it.
 *
 * The reader leaves tagged frames out unless the incident's verdict (kept in `index.json`,
 * refreshed from `verdictOf` at every flush) is `false_positive`. Frames `excluded` names a
 * reason for are not recorded, and counted by reason. Costs on the scoring path: one tracker
 * step per window, and per kept frame one copy into an encoded record; writes happen in `flush`.
 */
export class HistoryRecorder {
  readonly #o: HistoryRecorderOptions;
  readonly #writer: ChunkWriter;
  readonly #session = randomBytes(4).readUInt32LE(0);
  readonly #streams = new Map<string, StreamState>();
  #model: RecordedModel;
  #sha: string;
  /** Streams whose machine stopped, with the stop's frame time, until their next window. */
  readonly #stops = new Map<string, number>();
  #tracker: IncidentTracker;
  #index: HistoryIndex | undefined;
  /** Counted before the index is loaded, added to it then. */
  #pending: { excluded: Record<string, number>; dropped: number } = { excluded: {}, dropped: 0 };
  /** Incidents tagged since the index was last saved. */
  readonly #tagged = new Map<string, IndexedIncident>();
  /**
   * The index in memory differs from index.json: set by what goes into it (tags, counts,
   * dropped chunks, a changed verdict), cleared only once a write of it succeeded, so an idle
   * recorder writes nothing and a failed write is tried again at the next flush. Set at the
   * start: the first flush writes the index once, so every writer's folder has one.
   */
  #indexDirty = true;
  #failing = false;
  #flushing: Promise<void> | undefined;

  constructor(options: HistoryRecorderOptions) {
    for (const [name, value] of [
      ["HISTORY_EVERY_N", options.everyN],
      ["HISTORY_RUN_FRAMES", options.runFrames],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`'${name}' must be an integer >= 1, got ${value}`);
      }
    }
    this.#o = options;
    this.#model = options.model;
    this.#sha = featuresSha256(options.model.feature_names);
    this.#tracker = options.tracker(options.model);
    this.#writer = new ChunkWriter({
      dir: options.dir,
      maxBytes: options.maxBytes,
      header: chunkHeaderOf(options.model, this.#sha),
      onDrop: (files) => {
        this.#pending.dropped += files.length;
      },
    });
  }

  /** Bytes of history on disk and queued. */
  get bytes(): number {
    return this.#writer.bytes + this.#writer.queuedBytes;
  }

  /**
   * Takes one scored batch of this model (synchronously: the batch's buffers are reused after
   * it returns). `frames` holds each window's newest frame; `model` is the version that scored.
   */
  scored(batch: ScoredBatch, frames: FrameSource, model: RecordedModel): void {
    if (model !== this.#model) this.#useModel(model);
    const { everyN, runFrames } = this.#o;
    for (let r = 0; r < batch.size; r++) {
      const streamId = batch.streamIds[r];
      const timestamp = batch.timestamps[r];
      const stoppedAt = this.#stops.get(streamId);
      if (stoppedAt !== undefined && timestamp > stoppedAt) {
        // The first window after its machine stopped: as for the live alert path, the stream
        // starts afresh (a new run, no incident carried over the stop).
        this.#stops.delete(streamId);
        this.forget(streamId);
      }
      const s = this.#stream(streamId);
      const seq = s.seq++;
      const from = batch.flaggedFrom[r];
      const to = batch.flaggedFrom[r + 1];
      const flagged = to > from ? batch.flagged.subarray(from, to) : EMPTY;
      const events = this.#tracker.observe({ streamId, timestamp, flagged, evidence: [] });
      this.#noteHit(s, streamId, timestamp, seq, flagged.length > 0);
      let resolved: string | undefined;
      const kept = (Math.floor(seq / runFrames) + s.phase) % everyN === 0;
      const frame = kept ? this.#frame(streamId, timestamp, seq, frames) : undefined;
      if (frame) s.held.push(frame);
      for (const e of events) {
        if (e.event === "opened") {
          s.open = { id: e.incidentId, startedAt: e.startedAt };
          this.#release(s, Number.POSITIVE_INFINITY, {
            incidentId: e.incidentId,
            firstSeq: this.#firstSeqOf(s, e.startedAt),
          });
        } else if (e.event === "resolved") resolved = e.incidentId;
      }
      const incident = s.open?.id ?? resolved;
      if (resolved) s.open = undefined;
      if (incident) {
        // Inside an incident: every frame of its windows is tagged at once.
        for (const f of s.held) this.#write(f, incident);
        s.held = [];
      } else if (!this.#tracker.has(streamId)) {
        // Nothing confirming: frames no later window's start can reach are clean.
        this.#release(s, seq - (this.#model.window_size - 1));
      }
      if (s.held.length > MAX_HELD) s.held.shift();
    }
    if (this.#writer.queuedBytes >= (this.#o.flushBytes ?? 2 ** 20)) void this.flush();
  }

  /**
   * Writes what is queued and refreshes the index (incident verdicts, exclusion counts). A
   * failed write is logged once (until one works again) and loses only what it was writing.
   */
  flush(): Promise<void> {
    this.#flushing = (this.#flushing ?? Promise.resolve()).then(async () => {
      try {
        await this.#writer.flush();
        await this.#saveIndex();
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
   * The machine of `streamId` stopped at frame time `at` (the model's running condition failed):
   * its windows after that start a new run, and the incident it was in ends there, as the live
   * alert path's does; windows before it (still to come in this batch) are recorded as usual.
   */
  machineStopped(streamId: string, at: number): void {
    this.#stops.delete(streamId);
    this.#stops.set(streamId, at);
    if (this.#stops.size > MAX_STREAMS)
      this.#stops.delete(this.#stops.keys().next().value as string);
  }

  /**
   * Forgets a stream this process no longer scores (a scale-out worker gave its partition up):
   * its held frames are dropped unwritten (their membership is unknown, as at a stop), and so is
   * its incident state. Should it come back, its frames start a new run (`seq` from 0 again).
   */
  forget(streamId: string): void {
    this.#stops.delete(streamId);
    if (!this.#streams.delete(streamId)) return;
    this.#tracker.expire(streamId);
  }

  /** Writes what is queued (held frames stay unwritten: their membership is unknown) and closes the chunk. */
  async close(): Promise<void> {
    await this.flush();
    await this.#writer.close().catch(() => {});
  }

  #stream(streamId: string): StreamState {
    let s = this.#streams.get(streamId);
    if (s) return s;
    if (this.#streams.size >= MAX_STREAMS) {
      const [oldest] = this.#streams.keys();
      this.#streams.delete(oldest);
    }
    s = {
      seq: 0,
      held: [],
      open: undefined,
      hits: [],
      phase: runPhase(streamId, this.#o.everyN),
    };
    this.#streams.set(streamId, s);
    return s;
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

  /** Keeps `s.hits` to the flagged windows an incident the tracker holds can still start at. */
  #noteHit(
    s: StreamState,
    streamId: string,
    timestamp: number,
    seq: number,
    flagged: boolean,
  ): void {
    if (!this.#tracker.has(streamId)) {
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
   * recorder's state of the stream (forgotten for room while the tracker kept it): every frame
   * still held then came after the start.
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
    this.#writer.append(encodeFrame(frame));
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

  async #saveIndex(): Promise<void> {
    this.#index ??= await readIndex(this.#o.dir, this.#model.name, (problem, keptAs) =>
      this.#o.log?.warn(
        "training history index unusable; starting a new one (frames tagged with incidents it named stay out of training)",
        { model: this.#model.name, problem, kept_as: keptAs ?? null },
      ),
    );
    const index = this.#index;
    if (this.#tagged.size || this.#pending.dropped || Object.keys(this.#pending.excluded).length) {
      this.#indexDirty = true;
    }
    for (const [id, entry] of this.#tagged) {
      const known = index.incidents[id];
      if (!known) index.incidents[id] = entry;
      else {
        known.first = Math.min(known.first, entry.first);
        known.last = Math.max(known.last, entry.last);
        known.frames += entry.frames;
      }
    }
    this.#tagged.clear();
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
          this.#indexDirty = true;
        }
      }
    }
    if (!this.#indexDirty) return;
    index.updated_at = new Date().toISOString();
    // After the chunks of this flush: index.json never names fewer incidents than the chunks
    // on disk tag (a tagged frame the index does not name stays out of training).
    await writeIndex(this.#o.dir, index);
    this.#indexDirty = false;
  }

  #useModel(model: RecordedModel): void {
    const sha = featuresSha256(model.feature_names);
    this.#model = model;
    if (sha === this.#sha) {
      // Another version with the same features: new incidents' ids name it, as the alerts' do.
      this.#tracker.useModelVersion(model.version);
      return;
    }
    // Other features: a fresh tracker and fresh chunks (their header names the features). The
    // frames the old version scored, queued or being written, stay under the old header.
    this.#sha = sha;
    this.#tracker = this.#o.tracker(model);
    this.#streams.clear();
    void this.#writer.useHeader(chunkHeaderOf(model, sha)).catch(() => {});
  }
}
