// Reads a model's training history back: every good record of every chunk, the index, and what was skipped.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type CompiledSilence,
  compileSilence,
  silenceCovers,
} from "../../contracts/silence_match.ts";
import { chunkTimes, decodeChunk, type HistoryFrame } from "./chunk_format.ts";
import { CHUNK_PATTERN } from "./chunk_writer.ts";
import { emptyIndex, type HistoryIndex, type IndexedSilence, readIndex } from "./history_index.ts";
import { featuresSha256 } from "./history_recorder.ts";

export interface HistoryRead {
  /** Frames in the order they were recorded (chunk by chunk, folder by folder). */
  frames: HistoryFrame[];
  index: HistoryIndex;
  chunks: number;
  /** Chunks of other features than asked for (an earlier model), not read. */
  otherFeatures: number;
  /** Records skipped (torn by a crash, or corrupt) and the bytes they took. */
  skippedRecords: number;
  skippedBytes: number;
  /**
   * Chunks whose header record was the damaged one, and the intact frames they held that were
   * not read for it (only the header says which sensors a frame's readings are, so with
   * `featureNames` they cannot be checked; without, they are read). Always set by
   * `readHistory`; optional for a `HistoryRead` built by hand.
   */
  unreadableHeaders?: { chunks: number; framesNotRead: number };
  /** One line per chunk that had something skipped or could not be read. */
  warnings: string[];
  /** With `maxFrames`: chunks of only older frames not read, and older frames of the chunks read that were dropped. */
  lookback?: { maxFrames: number; chunksNotRead: number; framesDropped: number };
}

/** Whether a recorded frame may be trained on, and if not, why. */
export type FrameUse =
  | { use: true; why: "clean" | "false_positive" }
  | {
      use: false;
      why: "incident_unjudged" | "true_positive" | "maintenance" | "sensor_fault" | "silenced";
    };

const compiledSilences = new WeakMap<Record<string, IndexedSilence>, CompiledSilence[]>();

/** The index's silences, compiled once per index read. */
function silencesOf(index: HistoryIndex): CompiledSilence[] {
  const kept = index.silences;
  if (!kept) return [];
  let compiled = compiledSilences.get(kept);
  if (!compiled) {
    compiled = Object.entries(kept).map(([id, s]) =>
      compileSilence({ silence_id: id, matchers: { stream: s.stream, sensors: [] }, ...s }),
    );
    compiledSilences.set(kept, compiled);
  }
  return compiled;
}

/**
 * A frame outside any incident is used; a frame of an incident only when operators judged the
 * incident a false alarm (`false_positive`); otherwise it is left out, by verdict. A usable frame
 * that a silence in the index covers is left out too (`silenced`): the recorder leaves out what
 * the silences it knows cover as it records, and this catches what it recorded before it knew.
 */
export function frameUse(
  frame: Pick<HistoryFrame, "incident" | "streamId" | "timestamp">,
  index: HistoryIndex,
): FrameUse {
  if (frame.incident) {
    const verdict = index.incidents[frame.incident]?.verdict ?? null;
    if (verdict !== "false_positive") return { use: false, why: verdict ?? "incident_unjudged" };
  }
  for (const s of silencesOf(index)) {
    if (silenceCovers(s, frame.streamId, undefined, frame.timestamp)) {
      return { use: false, why: "silenced" };
    }
  }
  return frame.incident ? { use: true, why: "false_positive" } : { use: true, why: "clean" };
}

/** Folds `other` (another writer's index) into `into`: incidents by id, counts added. */
function mergeIndex(into: HistoryIndex, other: HistoryIndex): void {
  for (const [id, entry] of Object.entries(other.incidents)) {
    const known = into.incidents[id];
    if (!known) {
      into.incidents[id] = { ...entry };
      continue;
    }
    // One incident two writers tagged frames of (its stream moved between workers).
    known.first = Math.min(known.first, entry.first);
    known.last = Math.max(known.last, entry.last);
    known.frames += entry.frames;
    if (other.updated_at > into.updated_at || known.verdict === null) {
      known.verdict = entry.verdict ?? known.verdict;
    }
  }
  for (const [reason, n] of Object.entries(other.excluded)) {
    into.excluded[reason] = (into.excluded[reason] ?? 0) + n;
  }
  into.dropped_chunks += other.dropped_chunks;
  // One silence several writers kept: the copy of the index written last knew it last.
  for (const [id, silence] of Object.entries(other.silences ?? {})) {
    into.silences ??= {};
    if (!into.silences[id] || other.updated_at > into.updated_at) into.silences[id] = silence;
  }
  if (other.updated_at > into.updated_at) into.updated_at = other.updated_at;
}

/**
 * Reads `dir` (`HISTORY_DIR/<model>`): its own chunks (the single-process engine writes there)
 * and those of every writer folder in it (`worker-<id>/`, one per scale-out worker), each folder
 * with its index, the indexes merged. With `featureNames`, only chunks recorded with exactly
 * those features are read. A stream's frame is read once per timestamp, the first met: a
 * partition taken over before its owner committed its last frames has them scored again by the
 * next owner (or by the same worker, re-reading after a failed batch). A chunk that is torn or
 * corrupt gives what it holds intact, with a warning; an unreadable one is a warning too. A chunk
 * whose header is unreadable is counted as such (`unreadableHeaders`), never as other features,
 * and with `featureNames` its frames are not read (nothing else says whose sensors they are: a
 * neighbouring chunk's header is no proof, since a switch to other sensors as many starts a new
 * chunk), with a warning naming how many. Never throws for the content of a chunk.
 */
export async function readHistory(
  dir: string,
  options: {
    model: string;
    featureNames?: readonly string[];
    /**
     * The lookback: only the most recent `maxFrames` frames, by their own times (never by chunk
     * numbers, which a backfill of old frames makes lie, nor by file times). Every chunk is
     * scanned once for its frames' times, one chunk at a time and no readings decoded; only the
     * chunks holding one of the newest `maxFrames` of the wanted frames are read, so memory
     * stays bounded by the lookback (and one chunk), not by `HISTORY_MAX_BYTES`. Of the frames
     * read, the oldest beyond `maxFrames` are dropped.
     */
    maxFrames?: number;
  },
): Promise<HistoryRead> {
  const wanted = options.featureNames ? featuresSha256(options.featureNames) : undefined;
  const writers = (await readdir(dir, { withFileTypes: true }).catch(() => []))
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort();
  const { maxFrames } = options;
  const skip =
    maxFrames === undefined ? undefined : await olderChunks(dir, writers, wanted, maxFrames);
  const out: HistoryRead = {
    frames: [],
    index: emptyIndex(options.model),
    chunks: 0,
    otherFeatures: 0,
    skippedRecords: 0,
    skippedBytes: 0,
    unreadableHeaders: { chunks: 0, framesNotRead: 0 },
    warnings: [],
  };
  // A damaged index loses the incidents and verdicts it held: their frames are left out as not
  // judged (none trained on by mistake), and the run says so.
  const unusableIndex = (source: string) => (problem: string) =>
    out.warnings.push(
      `${join(source, "index.json")} is unusable (${problem}): the incidents and verdicts it held are not applied, so their frames are left out`,
    );
  out.index = await readIndex(dir, options.model, unusableIndex(dir), false);
  /** Per stream, the timestamps read so far. */
  const seen = new Map<string, Set<number>>();
  for (const folder of ["", ...writers]) {
    const source = folder ? join(dir, folder) : dir;
    if (folder) {
      mergeIndex(out.index, await readIndex(source, options.model, unusableIndex(source), false));
    }
    await readFolder(source, folder, wanted, out, seen, skip);
  }
  if (maxFrames !== undefined) {
    let framesDropped = 0;
    if (out.frames.length > maxFrames) {
      // The newest maxFrames by time, in the order read (each stream's frames stay in order).
      const times = out.frames.map((f) => f.timestamp).sort((a, b) => b - a);
      const cut = times[maxFrames - 1];
      const kept = out.frames.filter((f) => f.timestamp >= cut).slice(-maxFrames);
      framesDropped = out.frames.length - kept.length;
      out.frames = kept;
    }
    out.lookback = { maxFrames, chunksNotRead: skip?.size ?? 0, framesDropped };
  }
  return out;
}

/**
 * The `max` newest times of the wanted frames met so far, a stream's frame at one time counted
 * once (as `readFolder` reads it once): a min-heap, the oldest of them at its root, beside the
 * keys it holds. O(log max) a frame, O(max) memory.
 */
class NewestTimes {
  readonly #max: number;
  readonly #times: number[] = [];
  readonly #keys: string[] = [];
  readonly #held = new Set<string>();

  constructor(max: number) {
    this.#max = max;
  }

  /** The oldest time among the newest `max` (`-Infinity` while fewer are held): older ones are not wanted. */
  get cut(): number {
    if (this.#max <= 0) return Number.POSITIVE_INFINITY;
    return this.#times.length < this.#max ? Number.NEGATIVE_INFINITY : this.#times[0];
  }

  /** Frame `i` (its stream from `streamId`, asked only when the time is among the newest). */
  add(time: number, i: number, streamId: (i: number) => string): void {
    // A NaN time (a corrupt record that passed its checksum cannot hold one, but a bad writer
    // could) would unorder the heap; `readFolder`'s cut drops such a frame anyway.
    if (this.#max <= 0 || Number.isNaN(time)) return;
    if (this.#times.length === this.#max && time <= this.#times[0]) return;
    const key = `${time} ${streamId(i)}`;
    if (this.#held.has(key)) return;
    this.#held.add(key);
    if (this.#times.length === this.#max) {
      this.#held.delete(this.#keys[0]);
      this.#times[0] = time;
      this.#keys[0] = key;
      this.#down(0);
    } else {
      this.#times.push(time);
      this.#keys.push(key);
      this.#up(this.#times.length - 1);
    }
  }

  #swap(i: number, j: number): void {
    [this.#times[i], this.#times[j]] = [this.#times[j], this.#times[i]];
    [this.#keys[i], this.#keys[j]] = [this.#keys[j], this.#keys[i]];
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#times[parent] <= this.#times[i]) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#times.length;
    for (;;) {
      let least = i;
      for (const child of [2 * i + 1, 2 * i + 2]) {
        if (child < n && this.#times[child] < this.#times[least]) least = child;
      }
      if (least === i) return;
      this.#swap(i, least);
      i = least;
    }
  }
}

/**
 * The chunks (`folder/name`) whose frames are all older than the newest `maxFrames` of the
 * wanted frames, across every writer folder. "Newest" is by the frames' own times, never by
 * chunk numbers (a backfill of old frames is written into a writer's newest chunks) nor by file
 * times (an NTP step back, or a copy or restore that does not keep them, would make old chunks
 * look new). Every chunk is scanned once, one at a time, for its frames' streams and times (no
 * readings decoded); what is kept is one time per lookback frame and one per chunk. A chunk with
 * no frame read there (unreadable, torn empty) is left for `readFolder` to read and warn about.
 */
async function olderChunks(
  dir: string,
  writers: string[],
  wanted: string | undefined,
  maxFrames: number,
): Promise<Set<string>> {
  const newestTimes = new NewestTimes(maxFrames);
  const chunks: { key: string; newest: number }[] = [];
  for (const folder of ["", ...writers]) {
    const source = folder ? join(dir, folder) : dir;
    const names = (await readdir(source).catch(() => [] as string[]))
      .filter((n) => CHUNK_PATTERN.test(n))
      .sort();
    for (const name of names) {
      const bytes = await readFile(join(source, name)).catch(() => undefined);
      if (!bytes) continue;
      const { header, timestamps, streamId } = chunkTimes(new Uint8Array(bytes));
      if (timestamps.length === 0) continue;
      let newest = Number.NEGATIVE_INFINITY;
      for (const t of timestamps) if (t > newest) newest = t;
      chunks.push({ key: `${folder}/${name}`, newest });
      // Frames `readFolder` would not read (other features, or a header that cannot say) do
      // not fill the lookback.
      if (wanted && header?.features_sha256 !== wanted) continue;
      for (let i = 0; i < timestamps.length; i++) newestTimes.add(timestamps[i], i, streamId);
    }
  }
  const { cut } = newestTimes;
  return new Set(chunks.filter((c) => c.newest < cut).map((c) => c.key));
}

/** Adds the chunks of one folder to `out`, leaving out frames `seen` already holds. */
async function readFolder(
  source: string,
  label: string,
  wanted: string | undefined,
  out: HistoryRead,
  seen: Map<string, Set<number>>,
  skip?: Set<string>,
): Promise<void> {
  const names = (await readdir(source).catch(() => [] as string[]))
    .filter((n) => CHUNK_PATTERN.test(n) && !skip?.has(`${label}/${n}`))
    .sort();
  for (const name of names) {
    const shown = label ? `${label}/${name}` : name;
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(join(source, name)));
    } catch (error) {
      // Dropped by the engine's byte bound between the listing and the read, or unreadable.
      out.warnings.push(`${shown}: not read (${(error as Error).message})`);
      continue;
    }
    const chunk = decodeChunk(bytes);
    out.chunks++;
    const problems: string[] = [];
    if (chunk.skipped) {
      out.skippedRecords += chunk.skipped;
      out.skippedBytes += chunk.skippedBytes;
      problems.push(
        `${chunk.skipped} torn or corrupt record(s) skipped (${chunk.skippedBytes} bytes)`,
      );
    }
    // An empty file is a chunk torn as it was started (before its header): it held nothing.
    const headerLost = chunk.header === undefined && bytes.length > 0;
    if (headerLost) {
      const lost = wanted ? chunk.frames.length : 0;
      const had = out.unreadableHeaders;
      out.unreadableHeaders = {
        chunks: (had?.chunks ?? 0) + 1,
        framesNotRead: (had?.framesNotRead ?? 0) + lost,
      };
      problems.push(
        lost
          ? `header unreadable: its ${lost} intact frame(s) not read (which sensors they hold cannot be checked)`
          : "header unreadable",
      );
    }
    if (problems.length) out.warnings.push(`${shown}: ${problems.join("; ")}`);
    if (headerLost && wanted) continue;
    if (wanted && chunk.header && chunk.header.features_sha256 !== wanted) {
      out.otherFeatures++;
      continue;
    }
    for (const frame of chunk.frames) {
      let times = seen.get(frame.streamId);
      if (!times) {
        times = new Set();
        seen.set(frame.streamId, times);
      }
      if (times.has(frame.timestamp)) continue;
      times.add(frame.timestamp);
      out.frames.push(frame);
    }
  }
}
