// Reads a model's training history back: every good record of every chunk, the index, and what was skipped.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeChunk, type HistoryFrame } from "./chunk_format.ts";
import { CHUNK_PATTERN } from "./chunk_writer.ts";
import { type HistoryIndex, readIndex } from "./history_index.ts";
import { featuresSha256 } from "./history_recorder.ts";

export interface HistoryRead {
  /** Frames in the order they were recorded (chunk by chunk). */
  frames: HistoryFrame[];
  index: HistoryIndex;
  chunks: number;
  /** Chunks of other features than asked for (an earlier model), not read. */
  otherFeatures: number;
  /** Records skipped (torn by a crash, or corrupt) and the bytes they took. */
  skippedRecords: number;
  skippedBytes: number;
  /** One line per chunk that had something skipped or could not be read. */
  warnings: string[];
}

/** Whether a recorded frame may be trained on, and if not, why. */
export type FrameUse =
  | { use: true; why: "clean" | "false_positive" }
  | { use: false; why: "incident_unjudged" | "true_positive" | "maintenance" | "sensor_fault" };

/**
 * A frame outside any incident is used; a frame of an incident only when operators judged the
 * incident a false alarm (`false_positive`); otherwise it is left out, by verdict.
 */
export function frameUse(frame: Pick<HistoryFrame, "incident">, index: HistoryIndex): FrameUse {
  if (!frame.incident) return { use: true, why: "clean" };
  const verdict = index.incidents[frame.incident]?.verdict ?? null;
  if (verdict === "false_positive") return { use: true, why: "false_positive" };
  return { use: false, why: verdict ?? "incident_unjudged" };
}

/**
 * Reads `dir` (`HISTORY_DIR/<model>`). With `featureNames`, only chunks recorded with exactly
 * those features are read. A chunk that is torn or corrupt gives what it holds intact, with a
 * warning; an unreadable one is a warning too. Never throws for the content of a chunk.
 */
export async function readHistory(
  dir: string,
  options: { model: string; featureNames?: readonly string[] },
): Promise<HistoryRead> {
  const wanted = options.featureNames ? featuresSha256(options.featureNames) : undefined;
  const names = (await readdir(dir).catch(() => [] as string[]))
    .filter((n) => CHUNK_PATTERN.test(n))
    .sort();
  const out: HistoryRead = {
    frames: [],
    index: await readIndex(dir, options.model),
    chunks: 0,
    otherFeatures: 0,
    skippedRecords: 0,
    skippedBytes: 0,
    warnings: [],
  };
  for (const name of names) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(join(dir, name)));
    } catch (error) {
      // Dropped by the engine's byte bound between the listing and the read, or unreadable.
      out.warnings.push(`${name}: not read (${(error as Error).message})`);
      continue;
    }
    const chunk = decodeChunk(bytes);
    out.chunks++;
    if (chunk.skipped) {
      out.skippedRecords += chunk.skipped;
      out.skippedBytes += chunk.skippedBytes;
      out.warnings.push(
        `${name}: ${chunk.skipped} torn or corrupt record(s) skipped (${chunk.skippedBytes} bytes)`,
      );
    }
    if (wanted && chunk.header?.features_sha256 !== wanted) {
      out.otherFeatures++;
      continue;
    }
    for (const frame of chunk.frames) out.frames.push(frame);
  }
  return out;
}
