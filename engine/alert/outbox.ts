// The durable alert outbox: an fsync'd append-only log of alerts not yet delivered.
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { takeLockFile } from "../../contracts/lock_file.ts";
import type { AlertRecord } from "./alert_sender.ts";

export interface OutboxOptions {
  /** Folder of the log (`DATA_DIR`); created when missing. */
  dir: string;
  /** Delivered marks that trigger a rewrite of the log with only undelivered alerts (1000). */
  compactAfter?: number;
  /**
   * Bytes of the log no longer needed (delivered alerts' lines) that trigger the rewrite too
   * (16 MiB): a thousand delivered alerts of evidence would otherwise stay on disk for weeks.
   */
  compactBytes?: number;
}

type FileHandle = Awaited<ReturnType<typeof open>>;

/**
 * Writes all of `text` at the file's position: `FileHandle.write` reports a short write (a disk
 * filling up part-way) as fewer bytes, not as an error; the rest is written or its error thrown.
 */
async function writeAll(file: FileHandle, text: string): Promise<number> {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, at, bytes.length - at);
    if (bytesWritten <= 0) throw Object.assign(new Error("no byte written"), { code: "EIO" });
    at += bytesWritten;
  }
  return bytes.length;
}

const FILE = "alerts.log";
/** Names the process that has the log open: two writers would lose each other's alerts. */
const LOCK = "alerts.lock";

/** Characters written at once when the log is rewritten. */
const REWRITE_PART = 4 * 2 ** 20;

/** Delivered ids remembered, so that alerts kept elsewhere (the incident state) are not sent again. */
const RECENT_DONE = 4096;

// The alert body is embedded as JSON, not as an escaped string, so the log stays greppable.
function addLine(r: AlertRecord): string {
  const tp = r.traceparent ? `,"traceparent":${JSON.stringify(r.traceparent)}` : "";
  return `{"op":"add","id":${JSON.stringify(r.id)}${tp},"alert":${r.body}}\n`;
}

/** Another running process has the outbox open. */
export class OutboxInUseError extends Error {
  override name = "OutboxInUseError";
}

/**
 * Alerts are appended as JSON lines (`{"op":"add","id","traceparent","alert":{...}}`) and fsync'd
 * before their first delivery attempt, a whole scored batch per fsync (group commit). Delivery
 * appends `{"op":"done","id"}` without fsync: losing such a mark only causes a redelivery, which
 * the backend deduplicates by `alert_id`. Opening replays the log (a torn last line from a crash
 * is skipped: it was never fsync'd, so never sent) and compacts it to the undelivered alerts
 * (and the marks of the newest RECENT_DONE delivered ones, for `wasDelivered`).
 *
 * All file operations run one after another on a promise chain, so marks never overtake adds.
 */
export class Outbox {
  readonly path: string;
  readonly #dir: string;
  readonly #compactAfter: number;
  readonly #compactBytes: number;
  readonly #pending = new Map<string, AlertRecord>();
  /** Bytes of the undelivered alerts' bodies. */
  #bytes = 0;
  /** Ids marked delivered, read from the log at open or marked since: the newest RECENT_DONE. */
  readonly #done = new Set<string>();
  #file: FileHandle | undefined;
  /** The log's length in bytes: where the next append begins (this process alone writes it). */
  #size = 0;
  #marks = 0;
  /** The log's length from which a rewrite by bytes is tried again after one failed (a full disk). */
  #retryAtSize = 0;
  #chain: Promise<unknown> = Promise.resolve();
  /** Lines skipped when the log was opened (torn writes). */
  skippedLines = 0;

  private constructor(options: OutboxOptions) {
    const { compactAfter = 1000, compactBytes = 16 * 2 ** 20 } = options;
    if (!Number.isInteger(compactAfter) || compactAfter < 1) {
      throw new RangeError(`'compactAfter' must be a positive integer, got ${compactAfter}`);
    }
    if (!Number.isInteger(compactBytes) || compactBytes < 1) {
      throw new RangeError(`'compactBytes' must be a positive integer, got ${compactBytes}`);
    }
    this.#dir = options.dir;
    this.#compactAfter = compactAfter;
    this.#compactBytes = compactBytes;
    this.path = join(options.dir, FILE);
  }

  /**
   * Opens (or creates) the outbox in `dir`, replays and compacts the log. Refused while another
   * running process has it open (a second engine started on the same `DATA_DIR`): its rewrite
   * would replace the log under the first one, whose next alerts would then be lost. A lock
   * left by a process that is gone (killed) is taken over.
   */
  static async open(options: OutboxOptions): Promise<Outbox> {
    const outbox = new Outbox(options);
    await mkdir(outbox.#dir, { recursive: true });
    await outbox.#lock();
    // Line by line: a log of any size opens (one string of it would stop at V8's ~512 MiB).
    const input = createReadStream(outbox.path, { encoding: "utf8" });
    try {
      for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
        if (line) outbox.#replay(line);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    } finally {
      input.destroy();
    }
    // A compaction that cannot be written (a full disk) leaves the log as it is: every line of it
    // was read, and appends go on at its end.
    await outbox.#rewrite().catch(async () => {
      outbox.#file = await open(outbox.path, "a");
      outbox.#size = (await outbox.#file.stat()).size;
    });
    return outbox;
  }

  /** Undelivered alerts held. */
  get size(): number {
    return this.#pending.size;
  }

  /** Bytes of the undelivered alerts held (their bodies, on disk and in memory). */
  get bytes(): number {
    return this.#bytes;
  }

  #hold(r: AlertRecord): void {
    const before = this.#pending.get(r.id);
    this.#bytes += Buffer.byteLength(r.body) - (before ? Buffer.byteLength(before.body) : 0);
    this.#pending.set(r.id, r);
  }

  #drop(id: string): boolean {
    const held = this.#pending.get(id);
    if (!held) return false;
    this.#bytes -= Buffer.byteLength(held.body);
    this.#pending.delete(id);
    return true;
  }

  /** Whether alert `id` is held, undelivered. */
  has(id: string): boolean {
    return this.#pending.has(id);
  }

  /** Whether alert `id` was marked delivered (in the log found at open, or since; the newest 4,096, kept across compactions and restarts). */
  wasDelivered(id: string): boolean {
    return this.#done.has(id);
  }

  #remember(id: string): void {
    this.#done.delete(id);
    this.#done.add(id);
    if (this.#done.size > RECENT_DONE)
      this.#done.delete(this.#done.values().next().value as string);
  }

  /** Undelivered alerts, oldest first. */
  pending(): AlertRecord[] {
    return [...this.#pending.values()];
  }

  /**
   * Appends alerts and fsyncs once for all of them; resolves when they are durable, and only then
   * holds them (`has`, `size`): an append that fails leaves neither a record nor a fragment.
   */
  append(records: readonly AlertRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const lines = records.map(addLine);
    return this.#serial(async () => {
      await this.#appendText(lines.join(""), true);
      for (const r of records) this.#hold(r);
    });
  }

  /** Marks an alert delivered; it leaves the outbox and the log is compacted when due. */
  delivered(id: string): Promise<void> {
    if (!this.#drop(id)) return Promise.resolve();
    this.#remember(id);
    return this.#serial(async () => {
      await this.#appendText(`{"op":"done","id":${JSON.stringify(id)}}\n`, false);
      // Due after enough marks or enough bytes of delivered alerts, and no sooner than the
      // rewrite removes as much as it copies (the undelivered alerts), so its cost is amortised.
      const byMarks = ++this.#marks >= this.#compactAfter && this.#marks >= this.#pending.size;
      const waste = this.#size - this.#bytes;
      const byBytes =
        waste >= this.#compactBytes && waste >= this.#bytes && this.#size >= this.#retryAtSize;
      if (byMarks || byBytes) {
        // One that cannot be written (a full disk) is tried again after as many marks or bytes more.
        await this.#rewrite().catch(() => {
          this.#marks = 0;
          this.#retryAtSize = this.#size + this.#compactBytes;
        });
      }
    });
  }

  /** Flushes and closes the log; the outbox must not be used afterwards. */
  close(): Promise<void> {
    return this.#serial(async () => {
      const file = this.#file;
      this.#file = undefined;
      if (file) {
        await file.sync();
        await file.close();
        await rm(join(this.#dir, LOCK), { force: true });
      }
    });
  }

  async #lock(): Promise<void> {
    const path = join(this.#dir, LOCK);
    await takeLockFile(
      path,
      (pid) =>
        new OutboxInUseError(
          `the alert outbox in ${this.#dir} is in use by process ${pid}: another engine runs on this DATA_DIR; give each engine its own DATA_DIR (or remove ${path} if that process is no engine)`,
        ),
    );
  }

  /**
   * Appends `text` whole or not at all: a short write (a disk filling up part-way) is completed
   * or fails, and a failed append is cut back to where it began, so no fragment is left for the
   * next line to merge into (both would be skipped at the next start).
   */
  async #appendText(text: string, durable: boolean): Promise<void> {
    const file = this.#open();
    const size = this.#size;
    try {
      this.#size = size + (await writeAll(file, text));
      if (durable) await file.sync();
    } catch (error) {
      this.#size = size;
      await file.truncate(size).catch(() => {});
      throw error;
    }
  }

  #open(): FileHandle {
    if (!this.#file) throw new Error("outbox is closed");
    return this.#file;
  }

  #serial(step: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(step);
    // A failed step fails its caller; later steps still run.
    this.#chain = next.catch(() => {});
    return next;
  }

  #replay(line: string): void {
    let entry: { op?: unknown; id?: unknown; traceparent?: unknown; alert?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      this.skippedLines++;
      return;
    }
    if (typeof entry.id !== "string") {
      this.skippedLines++;
    } else if (entry.op === "add" && entry.alert && typeof entry.alert === "object") {
      const traceparent = typeof entry.traceparent === "string" ? entry.traceparent : undefined;
      // JSON.stringify(JSON.parse(body)) === body for a body JSON.stringify made: same signature.
      this.#hold({ id: entry.id, body: JSON.stringify(entry.alert), traceparent });
    } else if (entry.op === "done") {
      this.#drop(entry.id);
      this.#remember(entry.id);
    } else {
      this.skippedLines++;
    }
  }

  /** Replaces the log with the undelivered alerts: write aside, fsync, rename, reopen. */
  async #rewrite(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const out = await open(tmp, "w");
    let written: number;
    try {
      // The delivered ids remembered are kept as marks too, so the next start knows them.
      // Written a few MiB at a time: the undelivered alerts may be more than one string holds.
      let part: string[] = [];
      let partBytes = 0;
      written = 0;
      const put = async (line: string) => {
        part.push(line);
        partBytes += line.length;
        if (partBytes < REWRITE_PART) return;
        written += await writeAll(out, part.join(""));
        part = [];
        partBytes = 0;
      };
      for (const id of this.#done) await put(`{"op":"done","id":${JSON.stringify(id)}}\n`);
      for (const r of this.#pending.values()) await put(addLine(r));
      if (part.length) written += await writeAll(out, part.join(""));
      await out.sync();
    } catch (error) {
      // Not renamed: the log stays whole.
      await out.close().catch(() => {});
      await rm(tmp, { force: true });
      throw error;
    }
    await out.close();
    await this.#file?.close();
    await rename(tmp, this.path);
    this.#file = await open(this.path, "a");
    this.#size = written;
    this.#marks = 0;
    this.#retryAtSize = 0;
  }
}
