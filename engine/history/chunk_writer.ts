// Appends records to numbered chunk files under one folder, rotating them and dropping the oldest past a byte bound.

import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";

/** Chunk files are `<12-digit sequence>.chunk`, oldest first by name. */
export const CHUNK_PATTERN = /^(\d{12})\.chunk$/;

interface OpenChunk {
  name: string;
  handle: FileHandle;
  bytes: number;
  /** The header it was started with: records queued under another one go to a new chunk. */
  header: () => Uint8Array;
}

export interface ChunkWriterOptions {
  dir: string;
  /** Bytes all chunks may take together; the oldest whole chunks go first. */
  maxBytes: number;
  /**
   * The record every chunk starts with (its header), built when the chunk is started. Records
   * queued while it is current are written only into chunks it started ({@link ChunkWriter.useHeader}).
   */
  header: () => Uint8Array;
  /** Called when chunks are dropped to keep the bound (their file names). */
  onDrop?: (files: string[]) => void;
}

/**
 * One writer per folder. `append` only queues (no I/O on the caller's path); `flush` writes what
 * is queued with one `writev` and rotates to a new chunk once the current one holds a sixteenth
 * of `maxBytes` (at least 64 KiB, at most 64 MiB). Closed chunks are fsync'd. Disk use stays
 * within `maxBytes` plus what one flush adds to the open chunk. A crash (even `kill -9`) can tear
 * only the records being written: every one before them is whole and checksummed. Each record
 * goes into a chunk started with the header current when it was queued, whatever happens later.
 */
/** A write the disk took only part of, as the error a full disk gives. */
const shortWrite = (written: number, size: number) =>
  Object.assign(new Error(`only ${written} of ${size} bytes written (the disk is full?)`), {
    code: "ENOSPC",
  });

export class ChunkWriter {
  readonly #o: ChunkWriterOptions;
  readonly #chunkBytes: number;
  /** Closed chunks, oldest first, with their sizes. */
  #closed: { name: string; bytes: number }[] = [];
  #current: OpenChunk | undefined;
  #next = 0;
  #queue: Uint8Array[] = [];
  #queued = 0;
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
    this.#chunkBytes = Math.min(
      64 * 2 ** 20,
      Math.max(64 * 1024, Math.floor(options.maxBytes / 16)),
    );
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Bytes on disk (closed chunks and the open one). */
  get bytes(): number {
    return this.#closed.reduce((n, c) => n + c.bytes, 0) + (this.#current?.bytes ?? 0);
  }

  /** Queues one encoded record. */
  append(record: Uint8Array): void {
    this.#queue.push(record);
    this.#queued += record.length;
  }

  /** Writes what is queued (after any write in progress). Rejects when the disk does. */
  flush(): Promise<void> {
    // A failed write does not stop the ones after it: each flush reports its own.
    // What is queued now goes: records appended after this call wait for the next flush.
    // They are bound to the header current now, not to the one current when they are written.
    const records = this.#queue;
    const header = this.#header;
    this.#queue = [];
    this.#queued = 0;
    const next = this.#chain.catch(() => {}).then(() => this.#write(records, header));
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
    for (const name of names) {
      const bytes = await stat(join(this.#o.dir, name)).then(
        (s) => s.size,
        () => 0,
      );
      this.#closed.push({ name, bytes });
    }
    const last = names.at(-1);
    this.#next = last ? Number(CHUNK_PATTERN.exec(last)![1]) + 1 : 0;
    this.#opened = true;
  }

  async #write(records: Uint8Array[], header: () => Uint8Array): Promise<void> {
    if (records.length === 0) return;
    if (!this.#opened) await this.#open();
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
        this.#closed.push({ name: current.name, bytes: current.bytes + size });
        throw error;
      }
      current.bytes += size;
      if (current.bytes >= this.#chunkBytes) await this.#closeCurrent();
    }
    await this.#prune();
  }

  /**
   * Opens the next chunk with its header. When that fails (a full disk) the chunk is removed and
   * its number used by the next try: a writer retried every flush leaves no empty chunks or open
   * handles behind.
   */
  async #startChunk(header: () => Uint8Array): Promise<OpenChunk> {
    const name = `${String(this.#next).padStart(12, "0")}.chunk`;
    const path = join(this.#o.dir, name);
    const handle = await open(path, "wx");
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
    this.#current = { name, handle, bytes: bytes.length, header };
    return this.#current;
  }

  async #closeCurrent(): Promise<void> {
    const current = this.#current;
    if (!current) return;
    this.#current = undefined;
    await current.handle.sync();
    await current.handle.close();
    this.#closed.push({ name: current.name, bytes: current.bytes });
  }

  async #prune(): Promise<void> {
    const dropped: string[] = [];
    while (this.#closed.length > 0 && this.bytes > this.#o.maxBytes) {
      const oldest = this.#closed.shift()!;
      await unlink(join(this.#o.dir, oldest.name)).catch(() => {});
      dropped.push(oldest.name);
    }
    if (dropped.length) this.#o.onDrop?.(dropped);
  }
}
