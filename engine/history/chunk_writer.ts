// Appends records to numbered chunk files under one folder, rotating them and dropping those of the oldest times past a byte bound.

import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readdir, readFile, stat, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";
import { chunkTimes } from "./chunk_format.ts";

/** Chunk files are `<12-digit sequence>.chunk`, oldest first by name. */
export const CHUNK_PATTERN = /^(\d{12})\.chunk$/;

/**
 * A chunk on disk: `oldest` and `newest` are the earliest and latest times of a record in it
 * (both `-Infinity`: not known, a chunk found on disk whose frames cannot be read).
 */
interface Chunk {
  name: string;
  bytes: number;
  oldest: number;
  newest: number;
}

interface OpenChunk extends Chunk {
  handle: FileHandle;
  /** The header it was started with: records queued under another one go to a new chunk. */
  header: () => Uint8Array;
}

export interface ChunkWriterOptions {
  dir: string;
  /**
   * Bytes all chunks may take together; whole chunks go, the one whose newest record is oldest
   * first (by the records' times, not by when they were written).
   */
  maxBytes: number;
  /**
   * The record every chunk starts with (its header), built when the chunk is started. Records
   * queued while it is current are written only into chunks it started ({@link ChunkWriter.useHeader}).
   */
  header: () => Uint8Array;
  /** Called when chunks are dropped to keep the bound, or for room on a full disk (their file names). */
  onDrop?: (files: string[]) => void;
  /**
   * Called when a write failed because the disk is full (`ENOSPC`), after the oldest chunks
   * were dropped for room: what was dropped, and the lower bound the writer keeps.
   */
  onFull?: (full: DiskFull) => void;
  /** Opens a chunk file (default `fs.promises.open`): a test gives a disk of its own size. */
  open?: (path: string, flags: string) => Promise<FileHandle>;
  /** The free space of the folder's disk (default `fs.promises.statfs`), as `open`. */
  statfs?: (dir: string) => Promise<{ bavail: number; bsize: number }>;
}

/** What a writer did when its disk was full. */
export interface DiskFull {
  /** Chunks deleted for room, in the order deleted ({@link ChunkWriter}). */
  dropped: string[];
  /** Their bytes. */
  freed: number;
  /** The bytes the writer keeps its chunks within from now on, until the disk has room again. */
  bound: number;
}

/** The least a full disk lowers a writer's bound to: one chunk of the smallest size. */
const MIN_BOUND = 64 * 1024;

/** A chunk's size for a bound: a sixteenth of it, at least 64 KiB, at most 64 MiB. */
const chunkBytesOf = (bound: number) =>
  Math.min(64 * 2 ** 20, Math.max(64 * 1024, Math.floor(bound / 16)));

/** The least of `times` (a loop: a flush can hold more records than a call takes arguments). */
function earliest(times: readonly number[]): number {
  let least = Number.POSITIVE_INFINITY;
  for (const t of times) if (t < least) least = t;
  return least;
}

/**
 * The earliest and latest frame time of a chunk found on disk, both `-Infinity` when it holds
 * no frame that can be read (so it is dropped first). One scan of its records at start, no
 * readings decoded, as the reader's lookback scans them.
 */
async function timesOnDisk(path: string): Promise<{ oldest: number; newest: number }> {
  const bytes = await readFile(path).catch(() => undefined);
  const { timestamps } = bytes ? chunkTimes(new Uint8Array(bytes)) : { timestamps: [] };
  let oldest = Number.POSITIVE_INFINITY;
  let newest = Number.NEGATIVE_INFINITY;
  // Comparisons, not Math.min: a NaN time (a bad writer's) is passed over.
  for (const t of timestamps) {
    if (t < oldest) oldest = t;
    if (t > newest) newest = t;
  }
  // No frame read: its times are not known, and it holds nothing worth keeping before others.
  if (newest === Number.NEGATIVE_INFINITY) return { oldest: newest, newest };
  return { oldest, newest };
}

const isDiskFull = (error: unknown) => (error as { code?: string })?.code === "ENOSPC";

/** A write the disk took only part of, as the error a full disk gives. */
const shortWrite = (written: number, size: number) =>
  Object.assign(new Error(`only ${written} of ${size} bytes written (the disk is full?)`), {
    code: "ENOSPC",
  });

/**
 * One writer per folder. `append` only queues (no I/O on the caller's path); `flush` writes what
 * is queued with one `writev` and rotates to a new chunk once the current one holds a sixteenth
 * of `maxBytes` (at least 64 KiB, at most 64 MiB). Closed chunks are fsync'd. Disk use stays
 * within `maxBytes` plus what one flush adds to the open chunk. A crash (even `kill -9`) can tear
 * only the records being written: every one before them is whole and checksummed. Each record
 * goes into a chunk started with the header current when it was queued, whatever happens later.
 *
 * Past the bound, closed chunks are deleted the one whose newest record is oldest first (of
 * equals, the first written), so what stays is the newest records by their own times: a
 * backfill of old frames, written after the live ones, goes before them. Each chunk's oldest and
 * newest time are kept as its records are written (a comparison each); those of the chunks
 * already in the folder are read once, at the first write, and one whose frames cannot be read
 * goes first.
 *
 * A full disk (`ENOSPC`, also when something else filled it) is relieved, not waited out: the
 * flush that meets it fails, and chunks are deleted (in the same order) until the history takes
 * at most three quarters of what it took then, its bound from then on (chunks sized for it), so
 * the next flush has room and the history no longer fills the disk that other files (the alert
 * outbox) need. The chunk written last is kept unless it alone is more than that bound. The
 * bound grows back (up to `maxBytes`) to three quarters of the room the history has, its chunks
 * and the disk's free space, measured as each chunk is started, when something else freed space.
 */
export class ChunkWriter {
  readonly #o: ChunkWriterOptions;
  /** The size a chunk is closed at: for `maxBytes`, smaller once a full disk lowered `#bound`. */
  #chunkBytes: number;
  /** Bytes all chunks may take: `maxBytes`, lower once the disk was full. */
  #bound: number;
  /** Closed chunks, first written first, with their sizes and times. */
  #closed: Chunk[] = [];
  #current: OpenChunk | undefined;
  #next = 0;
  #queue: Uint8Array[] = [];
  /** The time of each queued record. */
  #queueAt: number[] = [];
  #queued = 0;
  /** The earliest time of the records of each flush not finished yet. */
  readonly #writing = new Set<{ oldest: number }>();
  #chain: Promise<void> = Promise.resolve();
  #opened = false;
  #header: () => Uint8Array;

  constructor(options: ChunkWriterOptions) {
    if (!(Number.isInteger(options.maxBytes) && options.maxBytes > 0)) {
      throw new RangeError(
        `'HISTORY_MAX_BYTES' must be a positive integer, got ${options.maxBytes}`,
      );
    }
    this.#o = options;
    this.#header = options.header;
    this.#bound = options.maxBytes;
    this.#chunkBytes = chunkBytesOf(options.maxBytes);
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Bytes on disk (closed chunks and the open one). */
  get bytes(): number {
    return this.#closed.reduce((n, c) => n + c.bytes, 0) + (this.#current?.bytes ?? 0);
  }

  /**
   * The earliest time of a record on disk, queued or being written (`+Infinity`: none;
   * `-Infinity` before the first write, which reads the times of the chunks already there, and
   * while one whose frames cannot be read is there): anything timed before it is gone.
   */
  get oldest(): number {
    // Before the folder is read, the chunks already in it are not known.
    if (!this.#opened) return Number.NEGATIVE_INFINITY;
    let oldest = Math.min(
      this.#current?.oldest ?? Number.POSITIVE_INFINITY,
      earliest(this.#queueAt),
    );
    for (const c of this.#closed) oldest = Math.min(oldest, c.oldest);
    for (const w of this.#writing) oldest = Math.min(oldest, w.oldest);
    return oldest;
  }

  /** Queues one encoded record, of time `at` (for {@link oldest}; unknown: `-Infinity`). */
  append(record: Uint8Array, at = Number.NEGATIVE_INFINITY): void {
    this.#queue.push(record);
    this.#queueAt.push(at);
    this.#queued += record.length;
  }

  /** Writes what is queued (after any write in progress). Rejects when the disk does. */
  flush(): Promise<void> {
    // A failed write does not stop the ones after it: each flush reports its own.
    // What is queued now goes: records appended after this call wait for the next flush.
    // They are bound to the header current now, not to the one current when they are written.
    const records = this.#queue;
    const ats = this.#queueAt;
    const header = this.#header;
    this.#queue = [];
    this.#queueAt = [];
    this.#queued = 0;
    const writing = { oldest: earliest(ats) };
    this.#writing.add(writing);
    const next = this.#chain
      .catch(() => {})
      .then(() => this.#write(records, ats, header))
      .finally(() => this.#writing.delete(writing));
    this.#chain = next;
    return next;
  }

  /** Closes the open chunk after what is queued, so the next record starts a new one (new header). */
  rotate(): Promise<void> {
    const next = this.flush().then(() => this.#closeCurrent());
    this.#chain = next;
    return next;
  }

  /**
   * Records appended from now on go into chunks started with `header` (another model's
   * features); those queued before are written under the header they were queued with. The
   * open chunk is closed before the first record of `header` is written. Resolves as `flush`.
   */
  useHeader(header: () => Uint8Array): Promise<void> {
    const queued = this.flush();
    this.#header = header;
    return queued;
  }

  /** Flushes and closes the open chunk (fsync'd). */
  async close(): Promise<void> {
    await this.rotate();
  }

  async #open(): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true });
    const names = (await readdir(this.#o.dir)).filter((n) => CHUNK_PATTERN.test(n)).sort();
    // One chunk at a time: memory stays at one chunk's bytes, however many there are.
    for (const name of names) {
      const path = join(this.#o.dir, name);
      const bytes = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      this.#closed.push({ name, bytes, ...(await timesOnDisk(path)) });
    }
    const last = names.at(-1);
    this.#next = last ? Number(CHUNK_PATTERN.exec(last)![1]) + 1 : 0;
    this.#opened = true;
  }

  async #write(records: Uint8Array[], ats: number[], header: () => Uint8Array): Promise<void> {
    if (records.length === 0) return;
    if (!this.#opened) await this.#open();
    try {
      await this.#writeRecords(records, ats, header);
    } catch (error) {
      if (isDiskFull(error)) await this.#makeRoom();
      throw error;
    }
    await this.#prune();
  }

  async #writeRecords(
    records: Uint8Array[],
    ats: number[],
    header: () => Uint8Array,
  ): Promise<void> {
    if (this.#current && this.#current.header !== header) await this.#closeCurrent();
    let i = 0;
    while (i < records.length) {
      const current = this.#current ?? (await this.#startChunk(header));
      // Up to the rotation point (at least one record), in one writev.
      const batch: Uint8Array[] = [];
      let size = 0;
      while (
        i < records.length &&
        (batch.length === 0 || current.bytes + size < this.#chunkBytes)
      ) {
        batch.push(records[i]);
        size += records[i].length;
        // Before the write: a record torn by a failed one may be on disk all the same.
        if (ats[i] < current.oldest) current.oldest = ats[i];
        if (ats[i] > current.newest) current.newest = ats[i];
        i++;
      }
      try {
        // A disk filling up part-way returns fewer bytes, not an error: the chunk then ends in a
        // torn record, and the next record must not follow it there.
        const { bytesWritten } = await current.handle.writev(batch);
        if (bytesWritten < size) throw shortWrite(bytesWritten, size);
      } catch (error) {
        // The chunk may end in a torn record now: the next write starts a fresh one.
        this.#current = undefined;
        await current.handle.close().catch(() => {});
        this.#closed.push({
          name: current.name,
          bytes: current.bytes + size,
          oldest: current.oldest,
          newest: current.newest,
        });
        throw error;
      }
      current.bytes += size;
      if (current.bytes >= this.#chunkBytes) await this.#closeCurrent();
    }
  }

  /**
   * Opens the next chunk with its header. When that fails (a full disk) the chunk is removed and
   * its number used by the next try: a writer retried every flush leaves no empty chunks or open
   * handles behind.
   */
  async #startChunk(header: () => Uint8Array): Promise<OpenChunk> {
    if (this.#bound < this.#o.maxBytes) await this.#growBound();
    const name = `${String(this.#next).padStart(12, "0")}.chunk`;
    const path = join(this.#o.dir, name);
    const handle = await (this.#o.open ?? open)(path, "wx");
    const bytes = header();
    try {
      const { bytesWritten } = await handle.write(bytes);
      if (bytesWritten < bytes.length) throw shortWrite(bytesWritten, bytes.length);
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw error;
    }
    this.#next++;
    this.#current = {
      name,
      handle,
      bytes: bytes.length,
      oldest: Number.POSITIVE_INFINITY,
      newest: Number.NEGATIVE_INFINITY,
      header,
    };
    return this.#current;
  }

  async #closeCurrent(): Promise<void> {
    const current = this.#current;
    if (!current) return;
    this.#current = undefined;
    // Closed and counted even when the sync fails (a full disk can fail it): the file is there,
    // and only a chunk the writer counts is ever dropped for the bound.
    try {
      await current.handle.sync();
    } finally {
      await current.handle.close().catch(() => {});
      const { name, bytes, oldest, newest } = current;
      this.#closed.push({ name, bytes, oldest, newest });
    }
  }

  /**
   * After a write failed on a full disk: lowers the bound to three quarters of the bytes the
   * chunks take now (at least {@link MIN_BOUND}), sizes chunks for it, and deletes chunks down to
   * it as the bound does. The chunk written last (the one the write failed in) stays unless it
   * alone is over the bound: nothing else could make room then.
   */
  async #makeRoom(): Promise<void> {
    this.#bound = Math.min(this.#bound, Math.max(MIN_BOUND, Math.floor((this.bytes * 3) / 4)));
    this.#chunkBytes = chunkBytesOf(this.#bound);
    const last = this.#closed.at(-1);
    const before = this.bytes;
    const dropped = await this.#dropStalest(last && last.bytes <= this.#bound ? 1 : 0);
    if (dropped.length) this.#o.onDrop?.(dropped);
    this.#o.onFull?.({ dropped, freed: before - this.bytes, bound: this.#bound });
  }

  /** After a full disk: the bound grows back when the disk has room again ({@link ChunkWriter}). */
  async #growBound(): Promise<void> {
    const disk = await (this.#o.statfs ?? statfs)(this.#o.dir).catch(() => undefined);
    if (!disk) return;
    const room = this.bytes + disk.bavail * disk.bsize;
    const bound = Math.min(this.#o.maxBytes, Math.floor((room * 3) / 4));
    if (bound <= this.#bound) return;
    this.#bound = bound;
    this.#chunkBytes = chunkBytesOf(bound);
  }

  async #prune(): Promise<void> {
    const dropped = await this.#dropStalest(0);
    if (dropped.length) this.#o.onDrop?.(dropped);
  }

  /**
   * Deletes closed chunks while the chunks are over the bound, the one whose newest record is
   * oldest first ({@link #stalest}), never the `keep` written last.
   */
  async #dropStalest(keep: number): Promise<string[]> {
    const dropped: string[] = [];
    while (this.#closed.length > keep && this.bytes > this.#bound) {
      const [stalest] = this.#closed.splice(this.#stalest(keep), 1);
      await unlink(join(this.#o.dir, stalest.name)).catch(() => {});
      dropped.push(stalest.name);
    }
    return dropped;
  }

  /**
   * Which of the closed chunks but the `keep` written last goes first: the one whose newest
   * record is oldest, the first written of equals. O(chunks), a few dozen.
   */
  #stalest(keep: number): number {
    let at = 0;
    for (let i = 1; i < this.#closed.length - keep; i++) {
      if (this.#closed[i].newest < this.#closed[at].newest) at = i;
    }
    return at;
  }
}
