// When each stream last had a frame accepted, kept in DATA_DIR across restarts and past the stream limit, so a line that went dark stays listed as silent.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { writeFileAtomic } from "../_write_atomic.ts";
import { SILENT_STEPS, type SilentStream, type StreamWindows } from "./stream_windows.ts";

/** The file in `DATA_DIR`. */
export const SEEN_STREAMS_FILE = "streams_seen.json";

/** Streams remembered at most (the most recently active kept): a few lanes' `MAX_STREAMS`. */
export const SEEN_STREAMS_MAX = 4096;

const fileSchema = v.object({
  format: v.literal(1),
  streams: v.array(
    v.object({
      stream_id: v.pipe(v.string(), v.regex(STREAM_ID_PATTERN)),
      seen_at: v.pipe(v.string(), v.isoTimestamp()),
      step_ms: v.pipe(v.number(), v.minValue(0)),
    }),
  ),
});

interface Seen {
  seenAt: number;
  step: number;
}

/**
 * The streams the engine has seen, with when each last had a frame accepted and its reception
 * interval: what the lanes hold now, and what they held before a restart or before the stream
 * limit made them forget a stream. `GET /stats` lists a remembered stream that no lane holds as
 * `silent` by the lanes' own rule, so a line that went dark before a restart, or among more
 * streams than `MAX_STREAMS`, is still reported. Saved whole (`save`) every few seconds and at
 * stop: a kill -9 forgets at most the activity since the last save, never a silence older than it.
 *
 * @example const seen = await SeenStreams.open(dataDir, warn); await seen.save(lanes.map((l) => l.windows));
 */
export class SeenStreams {
  readonly path: string;
  readonly #max: number;
  readonly #seen = new Map<string, Seen>();
  /** What the file holds now, so an unchanged set is not written again. */
  #written = "";

  private constructor(path: string, max: number) {
    this.path = path;
    this.#max = max;
  }

  /**
   * Reads `DATA_DIR/streams_seen.json`. A missing file is an empty memory; an unreadable or
   * malformed one too, reported through `onUnusable` (the next save replaces it).
   */
  static async open(
    dataDir: string,
    onUnusable: (path: string, problem: string) => void,
    max = SEEN_STREAMS_MAX,
  ): Promise<SeenStreams> {
    const seen = new SeenStreams(join(dataDir, SEEN_STREAMS_FILE), max);
    let text: string;
    try {
      text = await readFile(seen.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        onUnusable(seen.path, (error as Error).message);
      }
      return seen;
    }
    let parsed: v.SafeParseResult<typeof fileSchema>;
    try {
      parsed = v.safeParse(fileSchema, JSON.parse(text));
    } catch (error) {
      onUnusable(seen.path, `not JSON: ${(error as Error).message}`);
      return seen;
    }
    if (!parsed.success) {
      onUnusable(seen.path, v.summarize(parsed.issues));
      return seen;
    }
    for (const s of parsed.output.streams) {
      seen.#remember(s.stream_id, { seenAt: Date.parse(s.seen_at), step: s.step_ms });
    }
    seen.#written = text;
    return seen;
  }

  /** Streams remembered (held by a lane or not). */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * The remembered streams that no lane in `lanes` holds, silent at `now` by the lanes' rule
   * (quiet for longer than `idleMs` and than {@link SILENT_STEPS} of their reception interval).
   */
  silent(now: number, idleMs: number, lanes: readonly StreamWindows[]): SilentStream[] {
    const out: SilentStream[] = [];
    for (const [streamId, s] of this.#seen) {
      const quiet = now - s.seenAt;
      if (!(quiet > idleMs && quiet > SILENT_STEPS * s.step)) continue;
      if (lanes.some((w) => w.knows(streamId))) continue;
      out.push({ stream_id: streamId, last_accepted_at: new Date(s.seenAt).toISOString() });
    }
    return out;
  }

  /**
   * Folds in what the lanes hold now (a stream's latest frame wins), keeps the
   * {@link SEEN_STREAMS_MAX} most recently active, and writes the file whole when it changed.
   */
  async save(lanes: readonly StreamWindows[]): Promise<void> {
    for (const windows of lanes) {
      for (const s of windows.lastSeen()) this.#remember(s.streamId, s);
    }
    if (this.#seen.size > this.#max) {
      const newest = [...this.#seen].sort((a, b) => b[1].seenAt - a[1].seenAt);
      this.#seen.clear();
      for (const [id, s] of newest.slice(0, this.#max)) this.#seen.set(id, s);
    }
    const text = JSON.stringify({
      format: 1,
      streams: [...this.#seen].map(([stream_id, s]) => ({
        stream_id,
        seen_at: new Date(s.seenAt).toISOString(),
        step_ms: s.step,
      })),
    });
    if (text === this.#written) return;
    // Not fsynced: a power cut may leave the previous file (or an unusable one, read as empty);
    // what it holds is a few seconds' knowledge the streams' next frames give back.
    await writeFileAtomic(this.path, text, { durable: false });
    this.#written = text;
  }

  #remember(streamId: string, s: Seen): void {
    const known = this.#seen.get(streamId);
    if (known && known.seenAt >= s.seenAt) return;
    this.#seen.set(streamId, { seenAt: s.seenAt, step: s.step });
  }
}
