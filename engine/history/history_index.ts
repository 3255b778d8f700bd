// The history's index: the incidents its frames are tagged with (and their verdicts), and what was never recorded, and why.
import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { Silence } from "../../contracts/silence.ts";
import type { IncidentVerdict } from "../../contracts/verdict_feed.ts";
import { writeFileAtomic } from "../_write_atomic.ts";

/** One incident whose windows' frames were recorded tagged with its id. */
export interface IndexedIncident {
  stream: string;
  /** Epoch ms of its first and last tagged frame. */
  first: number;
  last: number;
  frames: number;
  /** The operators' current verdict, as the engine last knew it (null: none yet). */
  verdict: IncidentVerdict | null;
}

/**
 * An operators' silence that covers this model's frames: its stream glob, span and recurrence,
 * as the engine last knew it. Sensor globs are resolved against the model's sensors when it is
 * written (a silence on any of them leaves whole frames out, as the recorder does), so only
 * silences touching the model are kept, and the reader applies them to whole frames.
 */
export interface IndexedSilence {
  stream: string;
  starts_at: string;
  ends_at: string;
  expired_at: string | null;
  recurrence: Silence["recurrence"];
}

/** `index.json` beside the chunks. */
export interface HistoryIndex {
  v: 1;
  model: string;
  updated_at: string;
  incidents: Record<string, IndexedIncident>;
  /** Frames of kept runs left out before recording, by reason (`silenced`, `machine_off`, ...). */
  excluded: Record<string, number>;
  /** Chunks dropped to keep `HISTORY_MAX_BYTES`, or for room on a full disk. */
  dropped_chunks: number;
  /**
   * Silences that cover this model, by id: the reader leaves their frames out, so a silence
   * created after the frames it covers were recorded (`starts_at` in the past, or a copy pulled
   * late) still keeps them out of training. Absent in an index written before silences were kept.
   */
  silences?: Record<string, IndexedSilence>;
}

export const INDEX_FILE = "index.json";
/** Incidents the index keeps at most (the most recent by last frame). */
const MAX_INCIDENTS = 10_000;
/** Silences the index keeps at most (those ending last). */
export const MAX_INDEXED_SILENCES = 1_000;

/** When an indexed silence stops covering anything: its end, or its expiry when that came first. */
export function indexedSilenceEnd(s: IndexedSilence): number {
  const ends = Date.parse(s.ends_at);
  return s.expired_at ? Math.min(ends, Date.parse(s.expired_at)) : ends;
}

export function emptyIndex(model: string): HistoryIndex {
  return {
    v: 1,
    model,
    updated_at: new Date(0).toISOString(),
    incidents: {},
    excluded: {},
    dropped_chunks: 0,
  };
}

/**
 * The index under `dir`, or an empty one when there is none or it does not parse. With
 * `onUnusable`, a file that is there but unusable (damaged: it is only ever replaced whole) is
 * moved aside as `index.json.unusable-<time>` (unless `moveAside` is false) and reported, not
 * silently overwritten.
 */
export async function readIndex(
  dir: string,
  model: string,
  onUnusable?: (problem: string, keptAs: string | undefined) => void,
  /** False for a reader beside the writer (retraining): it reports, and moves nothing. */
  moveAside = true,
): Promise<HistoryIndex> {
  const path = join(dir, INDEX_FILE);
  let problem: string;
  try {
    const index = JSON.parse(await readFile(path, "utf8")) as HistoryIndex;
    if (index?.v === 1 && typeof index.incidents === "object") return index;
    problem = "not a version 1 index";
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return emptyIndex(model);
    problem = (error as Error).message;
  }
  if (onUnusable) {
    const aside = `${path}.unusable-${new Date().toISOString().replaceAll(":", "-")}`;
    const kept = moveAside
      ? await rename(path, aside).then(
          () => aside,
          () => undefined,
        )
      : undefined;
    onUnusable(problem, kept);
  }
  return emptyIndex(model);
}

/**
 * Replaces the index whole (temporary file, renamed over it; `durable`: fsync'd too). Returns
 * the bytes written.
 */
export async function writeIndex(
  dir: string,
  index: HistoryIndex,
  { durable = true }: { durable?: boolean } = {},
): Promise<number> {
  const ids = Object.keys(index.incidents);
  if (ids.length > MAX_INCIDENTS) {
    ids.sort((a, b) => index.incidents[b].last - index.incidents[a].last);
    for (const id of ids.slice(MAX_INCIDENTS)) delete index.incidents[id];
  }
  const silences = index.silences ? Object.keys(index.silences) : [];
  if (silences.length > MAX_INDEXED_SILENCES) {
    const all = index.silences as Record<string, IndexedSilence>;
    silences.sort((a, b) => indexedSilenceEnd(all[b]) - indexedSilenceEnd(all[a]));
    for (const id of silences.slice(MAX_INDEXED_SILENCES)) delete all[id];
  }
  await mkdir(dir, { recursive: true });
  const json = JSON.stringify(index);
  await writeFileAtomic(join(dir, INDEX_FILE), json, { durable });
  return json.length;
}
