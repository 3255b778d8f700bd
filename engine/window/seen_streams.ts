// When each stream last had a frame accepted, kept in DATA_DIR across restarts and past the stream limit, so a line that went dark stays listed as silent.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { STREAM_ID_PATTERN } from "../../contracts/frame.ts";
import { writeFileAtomic } from "../_write_atomic.ts";
import {
  SILENT_STEPS,
  type SilentStream,
  type StreamWindows,
  silentFor,
} from "./stream_windows.ts";

/** The file in `DATA_DIR`. */
export const SEEN_STREAMS_FILE = "streams_seen.json";

/** Streams remembered at most (the most recently active kept): a few lanes' `MAX_STREAMS`. */
export const SEEN_STREAMS_MAX = 4096;

const seenSchema = v.object({
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
 * The in-memory part of what the engine has seen, whoever keeps it: each stream's last accepted
 * frame time and reception interval, at most `max` streams (the most recently active). Read from
 * and written as `{ format: 1, streams: [...] }`: the single process's file ({@link SeenStreams}),
 * a scale-out partition's KV entry (`bus/seen_streams_board.ts`). O(streams) per call.
 *
 * @example const memory = new SeenMemory(); memory.read(text); memory.fold(lanes); memory.text();
 */
export class SeenMemory {
  readonly #max: number;
  readonly #seen = new Map<string, Seen>();

  constructor(max = SEEN_STREAMS_MAX) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`'max' must be a positive integer, got ${max}`);
    }
    this.#max = max;
  }

  /** Streams remembered (held by a lane or not). */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * Folds in the streams of `text` (a stream's latest frame wins) and keeps the `max` most
   * recently active; `keep` leaves out those it refuses. Returns why the text is unusable (nothing folded in), or undefined.
   */
  read(text: string, keep: (streamId: string) => boolean = () => true): string | undefined {
    let parsed: v.SafeParseResult<typeof seenSchema>;
    try {
      parsed = v.safeParse(seenSchema, JSON.parse(text));
    } catch (error) {
      return `not JSON: ${(error as Error).message}`;
    }
    if (!parsed.success) return v.summarize(parsed.issues);
    for (const s of parsed.output.streams) {
      if (keep(s.stream_id)) this.#remember(s.stream_id, Date.parse(s.seen_at), s.step_ms);
    }
    // Two owners' entries merged (a write refused at a takeover) hold up to twice `max`: an
    // entry written untrimmed would exceed NATS's message limit, and every later write with it.
    this.#trim();
    return undefined;
  }

  /**
   * The remembered streams that no lane in `lanes` holds, silent at `now` by the lanes' rule
   * (quiet for longer than `idleMs` and than {@link SILENT_STEPS} of their reception interval).
   */
  silent(now: number, idleMs: number, lanes: readonly StreamWindows[]): SilentStream[] {
    const out: SilentStream[] = [];
    for (const [streamId, s] of this.#seen) {
      const quiet = now - s.seenAt;
      if (!silentFor(quiet, idleMs, s.step)) continue;
      if (lanes.some((w) => w.knows(streamId))) continue;
      out.push({ stream_id: streamId, last_accepted_at: new Date(s.seenAt).toISOString() });
    }
    return out;
  }

  /** Folds in what the lanes hold now (a stream's latest frame wins) and keeps the `max` most recently active. */
  fold(lanes: readonly StreamWindows[]): void {
    for (const windows of lanes) {
      for (const s of windows.lastSeen()) this.#remember(s.streamId, s.seenAt, s.step);
    }
    this.#trim();
  }

  /** Keeps the `max` most recently active. */
  #trim(): void {
    if (this.#seen.size <= this.#max) return;
    const newest = [...this.#seen].sort((a, b) => b[1].seenAt - a[1].seenAt);
    this.#seen.clear();
    for (const [id, s] of newest.slice(0, this.#max)) this.#seen.set(id, s);
  }

  /** What is remembered, as {@link read} takes it. */
  text(): string {
    return JSON.stringify({
      format: 1,
      streams: [...this.#seen].map(([stream_id, s]) => ({
        stream_id,
        seen_at: new Date(s.seenAt).toISOString(),
        step_ms: s.step,
      })),
    });
  }

  #remember(streamId: string, seenAt: number, step: number): void {
    const known = this.#seen.get(streamId);
    if (known && known.seenAt >= seenAt) return;
    this.#seen.set(streamId, { seenAt, step });
  }
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
  readonly #memory: SeenMemory;
  /** What the file holds now, so an unchanged set is not written again. */
  #written = "";

  private constructor(path: string, max: number) {
    this.path = path;
    this.#memory = new SeenMemory(max);
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
    const problem = seen.#memory.read(text);
    if (problem !== undefined) onUnusable(seen.path, problem);
    else seen.#written = text;
    return seen;
  }

  /** Streams remembered (held by a lane or not). */
  get size(): number {
    return this.#memory.size;
  }

  /** See {@link SeenMemory.silent}. */
  silent(now: number, idleMs: number, lanes: readonly StreamWindows[]): SilentStream[] {
    return this.#memory.silent(now, idleMs, lanes);
  }

  /**
   * Folds in what the lanes hold now (a stream's latest frame wins), keeps the
   * {@link SEEN_STREAMS_MAX} most recently active, and writes the file whole when it changed.
   */
  async save(lanes: readonly StreamWindows[]): Promise<void> {
    this.#memory.fold(lanes);
    const text = this.#memory.text();
    if (text === this.#written) return;
    // Not fsynced: a power cut may leave the previous file (or an unusable one, read as empty);
    // what it holds is a few seconds' knowledge the streams' next frames give back.
    await writeFileAtomic(this.path, text, { durable: false });
    this.#written = text;
  }
}
