// Reads a model's training history back: every good record of every chunk, the index, and what was skipped.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type CompiledSilence,
  compileSilence,
  silenceCovers,
} from "../../contracts/silence_match.ts";
import { decodeChunk, type HistoryFrame } from "./chunk_format.ts";
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
  /** With `maxFrames`: older chunks not read, and frames of the oldest chunk read that were dropped. */
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
     * The lookback: only the most recent `maxFrames` frames are read. Chunks are read newest
     * first (by chunk number within a writer, by their newest frame across writers; never by
     * file times) until they hold that many of the wanted frames;
     * older chunks are not read at all, so memory stays bounded by the lookback, not by
     * `HISTORY_MAX_BYTES`. Of the frames read, the oldest beyond `maxFrames` are dropped.
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

/** One writer folder's chunks, walked newest first while the lookback is filled. */
interface WriterChunks {
  folder: string;
  source: string;
  /** Chunk names, oldest first: a writer numbers its chunks in the order it writes them. */
  names: string[];
  /** The next chunk to look at, counting down; -1 once every one was. */
  next: number;
  /** The newest chunk not counted yet: its newest frame's time and the wanted frames it holds. */
  head: { index: number; newest: number; frames: number } | undefined;
}

/** Reads `w`'s next chunk that holds frames into `w.head` (undefined when none is left). */
async function nextHead(w: WriterChunks, wanted: string | undefined): Promise<void> {
  w.head = undefined;
  while (w.next >= 0) {
    const index = w.next--;
    // Unreadable: left for readFolder to warn about.
    const bytes = await readFile(join(w.source, w.names[index])).catch(() => undefined);
    if (!bytes) continue;
    const chunk = decodeChunk(new Uint8Array(bytes));
    if (chunk.frames.length === 0) continue;
    let newest = Number.NEGATIVE_INFINITY;
    for (const f of chunk.frames) if (f.timestamp > newest) newest = f.timestamp;
    const frames = !wanted || chunk.header?.features_sha256 === wanted ? chunk.frames.length : 0;
    w.head = { index, newest, frames };
    return;
  }
}

/**
 * The chunks (`folder/name`) older than the most recent ones that hold `maxFrames` of the
 * wanted frames. "Recent" never comes from file times (an NTP step back, or a copy or restore
 * that does not keep them, would make old chunks look new): within one writer folder its chunk
 * numbers give the order; across writers, the chunks are merged newest first by the time of
 * the newest frame each holds. Each chunk is read (one at a time) only when it is next in line
 * for its writer, so about one chunk per writer is read beyond those the lookback keeps.
 */
async function olderChunks(
  dir: string,
  writers: string[],
  wanted: string | undefined,
  maxFrames: number,
): Promise<Set<string>> {
  const all: WriterChunks[] = [];
  for (const folder of ["", ...writers]) {
    const source = folder ? join(dir, folder) : dir;
    const names = (await readdir(source).catch(() => [] as string[]))
      .filter((n) => CHUNK_PATTERN.test(n))
      .sort();
    const w: WriterChunks = { folder, source, names, next: names.length - 1, head: undefined };
    await nextHead(w, wanted);
    all.push(w);
  }
  let frames = 0;
  while (frames < maxFrames) {
    let pick: WriterChunks | undefined;
    for (const w of all) {
      if (w.head && (!pick?.head || w.head.newest > pick.head.newest)) pick = w;
    }
    if (!pick?.head) break;
    frames += pick.head.frames;
    await nextHead(pick, wanted);
  }
  const older = new Set<string>();
  for (const w of all) {
    const last = w.head ? w.head.index : w.next;
    for (let i = 0; i <= last; i++) older.add(`${w.folder}/${w.names[i]}`);
  }
  return older;
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
